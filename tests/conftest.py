"""Shared fixtures: the real face photos of ../shared/faces and one loaded face engine."""

from __future__ import annotations

import functools
import os
from pathlib import Path

# As the console script does: one BLAS thread per process (set before numpy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest

PROJECT = Path(__file__).resolve().parents[1]
FACES = PROJECT.parent / "shared" / "faces"


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES / "dev").is_dir():
        message = f"the real face photos are missing: expected them in {FACES}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must never go green by skipping every face test
        pytest.skip(message)
    return FACES


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    from service.faces.engine import FaceEngine
    from service.faces.matching import Thresholds
    from service.faces.modelfiles import verified_model_files

    return FaceEngine(verified_model_files(), min_score=Thresholds.load().detector_min_score)


@pytest.fixture(scope="session")
def thresholds():  # type: ignore[no-untyped-def]
    from service.faces.matching import Thresholds

    return Thresholds.load()


@pytest.fixture(scope="session")
def gallery(engine, faces_dir):  # type: ignore[no-untyped-def]
    """obama, biden and kit_harington enrolled from one reference photo each."""
    from service.faces.matching import Gallery

    refs = {
        "obama": faces_dir / "dev/obama/obama.jpg",
        "biden": faces_dir / "dev/biden/biden.jpg",
        "kit_harington": faces_dir / "dev/kit_harington/john1.jpeg",
    }
    return Gallery(
        {
            name: np.array([engine.reference(path.read_bytes())[1].encoding])
            for name, path in refs.items()
        }
    )


# --- the web service: settings per database backend, people, an app ---------------------------

DATABASES = ["sqlite"] + (
    ["postgresql"] if os.environ.get("PHOTO_REMOVAL_TEST_DATABASE_URL") else []
)
QUEUES = ["sqlite"] + (["redis"] if os.environ.get("PHOTO_REMOVAL_TEST_QUEUE_URL") else [])


# Most tests need the schema, not its making: migrating a fresh database takes 0.3-0.5 s (SQLite
# rebuilds a table for each altered column), and nearly every test starts an app. So each test
# gets an empty database already at the newest revision: on SQLite a copy of one migrated in this
# process, on PostgreSQL the tables emptied when the schema is already at head, then given the
# rows the migrations write (the periodic work's schedule), as that copy has them. The app still
# runs its migrations on start (a no-op there). test_migrations.py asks for `migrated=False`: a
# database as fresh as a new install's.


def _reset_postgres(url: str, migrated: bool) -> None:
    from sqlalchemy import create_engine, text
    from sqlmodel import SQLModel

    engine = create_engine(url)
    with engine.begin() as connection:
        tables = _tables_at_head(connection) if migrated else []
        if tables:  # DELETE, children first: TRUNCATE took 0.6 s more a test here
            for table in tables:
                connection.execute(text(f'DELETE FROM "{table}"'))
            for table, rows in _seeded_rows().items():
                connection.execute(SQLModel.metadata.tables[table].insert(), rows)
            sequences = connection.execute(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
            )
            for sequence in sequences.scalars().all():
                connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
        else:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def _tables_at_head(connection) -> list[str]:  # type: ignore[no-untyped-def]
    """The tables to empty, children first, if the schema holds exactly the newest revision's
    tables (and alembic_version); none otherwise."""
    from sqlalchemy import inspect, text
    from sqlmodel import SQLModel

    import service.tables  # noqa: F401  (registers the tables)

    found = set(inspect(connection).get_table_names())
    if found != set(SQLModel.metadata.tables) | {"alembic_version"}:
        return []
    version = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if version != [_head_revision()]:
        return []
    return [table.name for table in reversed(SQLModel.metadata.sorted_tables)]


@functools.cache
def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from service.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@functools.cache
def _sqlite_template() -> Path:
    """A SQLite database migrated to the newest revision, once per test process."""
    import atexit
    import shutil
    import tempfile

    from service.db import make_engine, migrate

    folder = tempfile.mkdtemp(prefix="photo-removal-schema-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    template = Path(folder) / "template.db"
    engine = make_engine(f"sqlite:///{template}")
    migrate(engine)
    with engine.connect() as connection:  # everything in the main file, nothing in the WAL
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return template


@functools.cache
def _seeded_rows() -> dict[str, list[dict]]:
    """The rows the migrations themselves write (the periodic work's schedule), by table."""
    from sqlalchemy import select
    from sqlmodel import SQLModel

    from service.db import make_engine

    engine = make_engine(f"sqlite:///{_sqlite_template()}")
    with engine.connect() as connection:
        rows = {
            table.name: [dict(row._mapping) for row in connection.execute(select(table))]
            for table in SQLModel.metadata.sorted_tables
        }
    engine.dispose()
    return {table: found for table, found in rows.items() if found}


def _migrated_sqlite(data_dir: Path) -> None:
    """An empty SQLite database at the newest revision, where the settings will look for it."""
    import shutil

    from service.private_files import private_file, private_folder

    target = private_folder(data_dir) / "photo-removal.db"
    if not target.exists():  # settings made again for the same data: the data stays
        shutil.copyfile(_sqlite_template(), private_file(target))


def _reset_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def make_settings(  # type: ignore[no-untyped-def]
    tmp_path: Path, database: str = "sqlite", queue: str = "sqlite", migrated: bool = True, **extra
):
    from service.config import Settings

    values: dict = {
        "data_dir": tmp_path / "data",
        "secret_key": "test-" + "k" * 40,
        "scan_workers": 1,
        "base_url": "http://testserver",
        "signups": "open",  # most tests need a second owner; tests of the policy set theirs
    }
    if database == "postgresql":
        values["database_url"] = os.environ["PHOTO_REMOVAL_TEST_DATABASE_URL"]
        _reset_postgres(values["database_url"], migrated)
    elif migrated and "database_url" not in extra:
        _migrated_sqlite(extra.get("data_dir", values["data_dir"]))
    if queue == "redis":
        values["queue_url"] = os.environ["PHOTO_REMOVAL_TEST_QUEUE_URL"]
        _reset_redis(values["queue_url"])
    values.update(extra)
    return Settings(**values)


@pytest.fixture(params=DATABASES)
def settings(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, database=request.param)
