"""Resumable uploads by the tus protocol 1.0.0 (core, creation, termination, expiration).

A friend's export can be many gigabytes over a phone's connection. Sent as one POST, a drop at
90% starts it over; sent by tus, the browser asks how much arrived (HEAD) and sends the rest
(PATCH), now or after a reload. The bytes received so far are a file in quarantine, and its size
is the offset: nothing else has to agree with it. A finished upload waits for the friend to
turn it, alone or with the other parts of a split export, into one source to scan
(`take`); an upload left idle for `IDLE` is deleted with its bytes.

https://tus.io/protocols/resumable-upload
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from service.db import remove_after_commit
from service.ingest.archives import archive_kind
from service.ingest.fields import safe_name
from service.private_files import private_file, private_folder
from service.tables import ExportUpload, Friend, utcnow

log = logging.getLogger(__name__)

VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration"
IDLE = timedelta(days=7)  # a download may take days; an upload paused for a week is forgotten
OPEN_AT_ONCE = 20  # unfinished uploads one friend may have: a split export has a few parts
_SNIFF = 512  # bytes that tell an archive from anything else (refused before the rest arrives)
NOT_AN_ARCHIVE = "this is not a ZIP or TAR archive; please upload the export file as downloaded"


class UploadRefused(Exception):
    """The request breaks the protocol or a limit: `status` and a sentence for the friend."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


@dataclass(frozen=True)
class Progress:
    offset: int
    length: int
    expires: datetime

    @property
    def finished(self) -> bool:
        return self.offset == self.length


def parse_metadata(header: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs (a value may be absent)."""
    pairs: dict[str, str] = {}
    for pair in (header or "").split(","):
        key, _, value = pair.strip().partition(" ")
        if not key:
            continue
        try:
            pairs[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            raise UploadRefused(400, "Upload-Metadata values must be base64") from None
    return pairs


def create(
    session: Session,
    folder: Path,
    limit: int,
    friend: Friend,
    length: int,
    metadata: dict[str, str],
) -> ExportUpload:
    """A new, empty upload of `length` bytes for this friend; its bytes will go to `folder`."""
    if length > limit:
        raise UploadRefused(413, f"the file is larger than the limit of {limit // 2**20} MB")
    unfinished = session.exec(
        select(ExportUpload.id).where(ExportUpload.friend_id == friend.id)
    ).all()
    if len(unfinished) >= OPEN_AT_ONCE:
        raise UploadRefused(
            409, "too many unfinished uploads: finish or cancel some before starting another"
        )
    assert friend.id is not None
    key = secrets.token_urlsafe(24)
    path = private_file(private_folder(folder) / f"tus-{key}")
    upload = ExportUpload(
        key=key,
        owner_id=friend.owner_id,
        friend_id=friend.id,
        filename=safe_name(metadata.get("filename") or metadata.get("name") or "upload"),
        length=length,
        path=str(path),
    )
    session.add(upload)
    session.flush()
    return upload


def find(session: Session, friend_ids: list[int], key: str) -> ExportUpload | None:
    """The upload under this key, if it is one of these invitations' (else as if none)."""
    upload = session.exec(select(ExportUpload).where(ExportUpload.key == key)).first()
    return upload if upload is not None and upload.friend_id in friend_ids else None


def progress(upload: ExportUpload) -> Progress:
    try:
        offset = Path(upload.path).stat().st_size
    except FileNotFoundError:
        offset = 0
    return Progress(offset, upload.length, upload.touched_at + IDLE)


async def append(upload: ExportUpload, offset: int, body: AsyncIterator[bytes]) -> Progress:
    """Add the body's bytes at `offset`, which must be where the file ends (409 otherwise).

    One request at a time per upload (a second gets 409 while the first runs). Bytes that
    arrive before the connection drops are kept: that is what the next HEAD reports.
    """
    upload.touched_at = utcnow()  # a resumed upload lives on, whether or not this one finishes
    with _locked(Path(upload.path)) as file:
        end = file.seek(0, 2)
        if offset != end:
            raise UploadRefused(409, f"the upload is at byte {end}, not {offset}")
        try:
            async for chunk in body:
                if end + len(chunk) > upload.length:
                    raise UploadRefused(413, "more bytes than the upload's length")
                file.write(chunk)
                end += len(chunk)
                if end - len(chunk) < _SNIFF <= end or end == upload.length:
                    _refuse_if_not_archive(file, end)
        finally:
            file.flush()
    return progress(upload)


def _refuse_if_not_archive(file: BinaryIO, end: int) -> None:
    file.seek(0)
    head = file.read(min(end, _SNIFF))
    file.seek(end)
    if archive_kind(head) is None:
        raise UploadRefused(415, NOT_AN_ARCHIVE)


@contextmanager
def _locked(path: Path) -> Iterator[BinaryIO]:
    try:
        file = path.open("r+b")
    except FileNotFoundError:
        raise UploadRefused(404, "no such upload") from None
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UploadRefused(409, "this upload is already being sent") from None
        yield file


def discard(session: Session, uploads: list[ExportUpload]) -> None:
    """Delete these uploads, their bytes once this commits."""
    for upload in uploads:
        session.delete(upload)
    session.flush()
    remove_after_commit(session, [upload.path for upload in uploads])


def discard_of(session: Session, friend_ids: list[int]) -> None:
    """Every upload these invitations started: what the friend shared goes with them."""
    discard(
        session,
        list(session.exec(select(ExportUpload).where(col(ExportUpload.friend_id).in_(friend_ids)))),
    )


def take(session: Session, friend_ids: list[int], keys: list[str]) -> list[ExportUpload]:
    """The finished uploads under these keys, in that order, removed from the list of uploads
    (their files now belong to the caller, who makes a source of them)."""
    if not keys or len(set(keys)) != len(keys):
        raise UploadRefused(422, "name each finished upload once")
    taken = []
    for key in keys:
        upload = find(session, friend_ids, key)
        if upload is None:
            raise UploadRefused(404, "no such upload: it may have expired; please upload again")
        if not progress(upload).finished:
            raise UploadRefused(409, f"{upload.filename} has not finished uploading")
        taken.append(upload)
    session.execute(delete(ExportUpload).where(col(ExportUpload.id).in_([u.id for u in taken])))
    return taken


def expire(db: Engine, now: datetime) -> int:
    """Delete uploads idle for longer than `IDLE`, with their bytes. Returns how many."""
    with Session(db) as session:
        stale = list(
            session.exec(select(ExportUpload).where(col(ExportUpload.touched_at) < now - IDLE))
        )
        discard(session, stale)
        session.commit()
    if stale:
        log.info("deleted %s resumable uploads left idle", len(stale))
    return len(stale)
