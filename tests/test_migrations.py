"""The migrations build exactly the schema the tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import service.tables  # noqa: F401  (registers the tables)
from service.config import Settings
from service.db import make_engine, migrate


def test_it_migrates_to_the_schema_of_the_tables(settings: Settings) -> None:
    engine = make_engine(settings.prepared().sqlalchemy_url)
    migrate(engine)
    migrate(engine)  # a second run is a no-op
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


def test_it_lets_two_processes_start_on_a_fresh_database_at_once(tmp_path: Path) -> None:
    # `serve` and `worker` often start together; both migrate. Neither may fail on the other's
    # tables (it did: "table owner already exists", and the worker died).
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = f"from service.db import make_engine, migrate; migrate(make_engine({url!r}))"
    starts = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(6)
    ]
    outcomes = [(p.communicate(timeout=120)[1].decode(), p.returncode) for p in starts]
    assert [status for _, status in outcomes] == [0] * 6, outcomes
