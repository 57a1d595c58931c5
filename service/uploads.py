"""A friend's sources: an uploaded export waiting in quarantine, or a profile link, and its scan."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, col, select

from service import invites
from service.audit import record
from service.states import SourceKind
from service.tables import Friend, Scan, Source


def add_source(
    session: Session,
    friend: Friend,
    *,
    kind: SourceKind,
    label: str,
    upload: Path | None,
    size: int,
) -> Scan:
    """The source and its queued scan; the caller sends the scan job once this commits."""
    assert friend.id is not None
    source = Source(
        owner_id=friend.owner_id,
        friend_id=friend.id,
        kind=kind,
        label=label[:2000],
        upload_path=str(upload) if upload else None,
        size_bytes=size,
    )
    session.add(source)
    session.flush()
    assert source.id is not None and friend.id is not None
    scan = Scan(owner_id=friend.owner_id, friend_id=friend.id, source_id=source.id)
    session.add(scan)
    session.flush()
    record(
        session, friend.owner_id, f"friend:{friend.id}", "source_added", kind=kind, scan_id=scan.id
    )
    return scan


def _shared_by(session: Session, friend: Friend) -> list[int]:
    """The friend's invitations whose uploads they see: this one and, in a family circle, those
    of the other members asking them (one person, one list of what they shared)."""
    return [f.id for f in invites.siblings(session, friend) if f.id is not None]


def scan_of(session: Session, friend: Friend, scan_id: int) -> Scan | None:
    scan = session.get(Scan, scan_id)
    ok = scan is not None and scan.friend_id in _shared_by(session, friend)
    return scan if ok else None


def scans_of(session: Session, friend: Friend) -> list[tuple[Scan, Source]]:
    rows = session.exec(
        select(Scan, Source)
        .where(col(Scan.friend_id).in_(_shared_by(session, friend)), Scan.source_id == Source.id)
        .order_by(col(Scan.id).desc())
    ).all()
    return [(scan, source) for scan, source in rows]
