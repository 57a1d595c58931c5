"""The database engine, sessions and migrations; SQLite (WAL, foreign keys) or PostgreSQL."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the scan job's writes
    cursor.execute("PRAGMA foreign_keys=ON")  # deleting an owner cascades to everything of theirs
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema up to date (Alembic, head), one process at a time: `serve` and `worker`
    often start together on a fresh database, and both would create the tables."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _sqlite_file_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # held until this transaction ends
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


_MIGRATION_KEY = 0x70686F74  # any constant shared by every process of the service


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on a file beside an SQLite database (DDL there is not transactional)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back otherwise.

    Stage code only adds and flushes; this boundary (or the request dependency) commits.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
