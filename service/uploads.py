"""A friend's sources: an uploaded export waiting in quarantine, or a profile link, and its scan."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlmodel import Session, col, select

from service import invites
from service.audit import record
from service.ingest.fields import safe_name
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


def shared_by(session: Session, friend: Friend) -> list[int]:
    """The friend's invitations whose uploads they see: this one and, in a family circle, those
    of the other members asking them (one person, one list of what they shared)."""
    return [f.id for f in invites.siblings(session, friend) if f.id is not None]


def scan_of(session: Session, friend: Friend, scan_id: int) -> Scan | None:
    scan = session.get(Scan, scan_id)
    ok = scan is not None and scan.friend_id in shared_by(session, friend)
    return scan if ok else None


def scans_of(session: Session, friend: Friend) -> list[tuple[Scan, Source]]:
    rows = session.exec(
        select(Scan, Source)
        .where(col(Scan.friend_id).in_(shared_by(session, friend)), Scan.source_id == Source.id)
        .order_by(col(Scan.id).desc())
    ).all()
    return [(scan, source) for scan, source in rows]


# ---- an export in several parts -------------------------------------------------------------
# Big Takeout and Facebook downloads come split (takeout-…-001.zip, -002.zip): the parts are one
# source, kept in a folder of their own in quarantine, so that JSON in one part describes the
# photos in another and the whole is scanned, counted and deleted as one.


def gather(folder: Path, parts: list[tuple[Path, str]]) -> Path:
    """The upload a source points at: the one part itself, or a new folder holding every part
    (each renamed after its place and file name, so they are read in the friend's order)."""
    if len(parts) == 1:
        return parts[0][0]
    together = folder / f"export-{secrets.token_hex(16)}"
    together.mkdir(mode=0o700)
    for number, (path, filename) in enumerate(parts, start=1):
        path.rename(together / f"{number:03d}-{safe_name(filename)}")
    return together


def parts_of(upload: Path) -> list[Path]:
    """The files of an upload: its parts in order when it is a folder of them, else itself."""
    if upload.is_dir():
        return sorted(path for path in upload.iterdir() if path.is_file())
    return [upload]


def label_of(filenames: list[str]) -> str:
    """How the friend's page names an upload: the file, or the first part and how many more."""
    if len(filenames) == 1:
        return filenames[0]
    return f"{filenames[0]} and {len(filenames) - 1} more part{'s' if len(filenames) > 2 else ''}"
