"""The database engine, sessions and migrations; SQLite (WAL, foreign keys) or PostgreSQL."""

from __future__ import annotations

import fcntl
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, make_url, text
from sqlmodel import Session, create_engine

from service.private_files import private_file

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_AFTER_COMMIT = "photo_removal_after_commit"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            private_file(Path(database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the scan job's writes
    cursor.execute("PRAGMA foreign_keys=ON")  # deleting an owner cascades to everything of theirs
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted rows (a withdrawn friend's faces, a deleted owner) are overwritten, not left behind.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema up to date (Alembic, head), one process at a time: `serve` and `worker`
    often start together on a fresh database, and both would create the tables."""
    upgrade(engine, "head")


def upgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _sqlite_file_lock(engine), engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # SQLite alters a table by copying it and dropping the old one; with foreign keys on,
            # that drop would cascade and delete every row that refers to it. The pragma only
            # changes outside a transaction.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            if engine.dialect.name == "postgresql":  # held until this transaction ends
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_KEY}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            if engine.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                assert not broken, f"a migration broke foreign keys: {broken[:5]}"
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


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


def after_commit(session: Session, hook: Callable[[], object]) -> None:
    """Run `hook` once the session's transaction commits; never if it rolls back.

    What cannot be undone (deleting a file, handing a job to the queue) waits for the rows that
    justify it to be durable. A failing hook is logged, never raised: the transaction is already
    committed, and the sweepers (service/jobs.py) pick up what a lost hook leaves behind.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(hook)


def remove_after_commit(session: Session, paths: list[str]) -> None:
    """Delete these files once the rows that point at them are gone for good."""
    if paths:
        after_commit(session, lambda: remove_files(paths))


def remove_files(paths: list[str]) -> None:
    """Delete these files (an export in several parts is a folder of them); gone is fine."""
    for path in paths:
        if Path(path).is_dir():  # an export uploaded in several parts
            shutil.rmtree(path, ignore_errors=True)
        else:
            Path(path).unlink(missing_ok=True)


@event.listens_for(Session, "after_commit")
def _run_hooks(session: Session) -> None:
    for hook in session.info.pop(_AFTER_COMMIT, []):
        try:
            hook()
        except Exception:
            log.exception("after-commit hook %r failed", hook)


@event.listens_for(Session, "after_rollback")
def _drop_hooks(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
