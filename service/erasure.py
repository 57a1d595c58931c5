"""What must not outlive a person's data: the mails about them, their rate-limit rows, and the
copies a database keeps of deleted rows (SQLite's write-ahead log).

Called where an owner leaves or a friend withdraws, inside the same transaction; the files and the
log go once it commits.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, delete, or_
from sqlmodel import Session, col, select

from service.db import after_commit, remove_after_commit
from service.notify.mail import outbox_file
from service.tables import OutgoingMail, RateEvent


def erase_mails(session: Session, outbox: Path | None, **about: int) -> None:
    """Delete the mails to or about this owner or friend (`owner_id=` or `friend_id=`), and
    their copies in the outbox folder."""
    column = {"owner_id": OutgoingMail.owner_id, "friend_id": OutgoingMail.friend_id}
    [(name, value)] = about.items()
    where = col(column[name]) == value
    keys = session.exec(select(OutgoingMail.idempotency_key).where(where)).all()
    session.execute(delete(OutgoingMail).where(where))
    if outbox is not None:
        remove_after_commit(session, [str(outbox / outbox_file(key)) for key in keys])


def erase_rate_events(session: Session, *subjects: str) -> None:
    """Rate-limit rows whose key names this address or id."""
    session.execute(
        delete(RateEvent).where(
            or_(*(col(RateEvent.key).contains(s, autoescape=True) for s in subjects))
        )
    )


def forget_deleted_rows(session: Session) -> None:
    """Once this commits, fold SQLite's write-ahead log into the database and empty it: deleted
    rows (overwritten there by secure_delete) linger in the log until a checkpoint."""
    engine = session.get_bind()
    if isinstance(engine, Engine) and engine.dialect.name == "sqlite":
        after_commit(session, lambda: _checkpoint(engine))


def _checkpoint(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
