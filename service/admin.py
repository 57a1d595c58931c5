"""The instance's admin (its first account): friends' reports, frozen owners, and clearing or
deleting them. Everything here is for the admin only; routes answer 404 to anyone else."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from service.accounts import NotAllowed, delete_owner
from service.audit import record
from service.states import ReportStatus
from service.tables import Owner, Report, utcnow

LISTED = 200  # reports on the admin page, open ones first


def reports(session: Session) -> list[tuple[Report, Owner]]:
    """Every report with its owner: open ones first, then the newest."""
    rows = session.exec(
        select(Report, Owner)
        .join(Owner, col(Owner.id) == col(Report.owner_id))
        .order_by(col(Report.status) != ReportStatus.open, col(Report.created_at).desc())
        .limit(LISTED)
    ).all()
    return [(report, owner) for report, owner in rows]


def open_reports(session: Session) -> int:
    query = select(func.count()).select_from(Report).where(Report.status == ReportStatus.open)
    return session.exec(query).one()


def frozen_owners(session: Session) -> list[Owner]:
    return list(
        session.exec(
            select(Owner).where(col(Owner.frozen_at).is_not(None)).order_by(col(Owner.frozen_at))
        ).all()
    )


def owner_of(session: Session, owner_id: int) -> Owner | None:
    return session.get(Owner, owner_id)


def clear(session: Session, admin: Owner, owner: Owner) -> None:
    """The admin looked into the reports and lets the owner invite (and be scanned for) again."""
    now = utcnow()
    owner.frozen_at = None
    session.add(owner)
    session.execute(
        update(Report)
        .where(col(Report.owner_id) == owner.id, col(Report.status) == ReportStatus.open)
        .values(status=ReportStatus.cleared, decided_at=now)
    )
    assert owner.id is not None
    record(session, owner.id, f"admin:{admin.id}", "cleared")


def delete(session: Session, admin: Owner, owner: Owner, outbox: Path | None) -> None:
    """Delete the owner and everything of theirs, their reports included."""
    if owner.id == admin.id:
        raise NotAllowed("to delete your own account, use your account page")
    delete_owner(session, owner, outbox)
