"""Scanning a friend's source for the owner's face: a resumable job that commits as it goes.

A scan records how many photos of its source (in source order) are done together with the matches
among them, in one transaction. A killed worker's scan is picked up again when its lease runs out
and continues after the last recorded photo, so no match is lost or stored twice.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from service.db import unit_of_work
from service.faces.matching import Gallery, Thresholds
from service.faces.scanner import PhotoScan, Scanner
from service.ingest.archives import ArchiveError, archive_kind
from service.ingest.exports import iter_export
from service.ingest.fetch import FetchOptions
from service.ingest.items import PhotoItem
from service.ingest.profiles import UnreadableLink, read_profile
from service.secrets_box import SecretBox
from service.tables import Match, Owner, ReferenceFace, Scan, Source, utcnow

log = logging.getLogger(__name__)
CHECKPOINT_SECONDS = 2.0
# A face this close to one the owner rejected ("not me") is that face again, in the same photo or
# a copy of it: it is not proposed a second time.
REJECTED_RADIUS = 0.35


class ScanFailed(Exception):
    """The scan cannot go on; the message is shown to the friend and the owner."""


@dataclass(frozen=True)
class _Known:
    """What earlier scans of this owner settled: photos already proposed, faces rejected."""

    digests: set[str]
    rejected: np.ndarray

    def is_new(self, digest: str, encoding: np.ndarray) -> bool:
        if digest and digest in self.digests:
            return False
        if not len(self.rejected):
            return True
        return bool(np.linalg.norm(self.rejected - encoding, axis=1).min() > REJECTED_RADIUS)


@dataclass(frozen=True)
class ScanContext:
    db: Engine
    box: SecretBox
    thresholds: Thresholds
    workers: int | None
    fetch: FetchOptions = field(default_factory=FetchOptions)
    lease: timedelta = timedelta(minutes=2)


def stalled_scans(db: Engine) -> list[int]:
    """Running scans whose worker stopped renewing its lease: their worker is gone."""
    with Session(db) as session:
        rows = session.exec(
            select(Scan.id).where(Scan.status == "running", col(Scan.lease_until) < utcnow())
        )
        return [scan_id for scan_id in rows if scan_id is not None]


def run_scan(ctx: ScanContext, scan_id: int) -> None:
    """The job: scan the source from where it stopped, then delete its upload. Idempotent."""
    claimed = _claim(ctx, scan_id)
    if claimed is None:
        return
    scan, source, gallery, known = claimed
    try:
        _scan_source(ctx, scan, source, gallery, known)
        _finish(ctx, scan, "done", None)
    except (ScanFailed, ArchiveError, UnreadableLink) as e:
        _finish(ctx, scan, "failed", str(e))
    except _LeaseLost:
        log.warning("scan %s was taken over by another worker", scan_id)
    except Exception:
        log.exception("scan %s failed", scan_id)
        _finish(ctx, scan, "failed", "Something went wrong while scanning; please try again.")


class _LeaseLost(Exception):
    pass


def _claim(ctx: ScanContext, scan_id: int) -> tuple[Scan, Source, Gallery, _Known] | None:
    now = utcnow()
    with unit_of_work(ctx.db) as session:
        scan = session.get(Scan, scan_id, with_for_update=True)
        if scan is None or scan.status in ("done", "failed"):
            return None
        if scan.status == "running" and scan.lease_until and scan.lease_until > now:
            return None  # another worker holds it
        source = session.get(Source, scan.source_id)
        owner = session.get(Owner, scan.owner_id)
        assert source is not None and owner is not None
        refs = session.exec(select(ReferenceFace).where(ReferenceFace.owner_id == owner.id)).all()
        known = _known(ctx, session, scan)
        scan.status, scan.attempts = "running", scan.attempts + 1
        scan.started_at = scan.started_at or now
        scan.lease_until = now + ctx.lease
        session.add(scan)
    codes = np.array([ctx.box.open(ref.sealed_encoding) for ref in refs])
    return scan, source, Gallery({owner.name: codes} if len(codes) else {}), known


def _known(ctx: ScanContext, session: Session, scan: Scan) -> _Known:
    """Photos this friend's earlier scans proposed (so a re-scan proposes only new ones), and
    every face this owner rejected."""
    digests = session.exec(
        select(Match.photo_digest).where(
            Match.friend_id == scan.friend_id, col(Match.scan_id) != scan.id
        )
    ).all()
    rejected = session.exec(
        select(Match.sealed_encoding).where(
            Match.owner_id == scan.owner_id, Match.review == "rejected"
        )
    ).all()
    codes = np.array([ctx.box.open(sealed) for sealed in rejected]).reshape(-1, 128)
    return _Known(digests={d for d in digests if d}, rejected=codes)


def _items(ctx: ScanContext, source: Source) -> Iterator[PhotoItem]:
    if source.kind == "profile":
        return iter(read_profile(source.label, ctx.fetch))
    if source.upload_path is None:
        raise ScanFailed("The uploaded file is no longer here; please upload it again.")
    return iter_export([Path(source.upload_path)])


def _counted_ahead(source: Source) -> bool:
    """Only a ZIP export is counted before scanning: its directory lists the photos at once.

    A TAR is a stream (counting would mean decompressing it all once more), and a profile's
    listing fetches its pages and may change meanwhile: those totals are known at the end.
    """
    if source.kind != "export" or source.upload_path is None:
        return False
    with open(source.upload_path, "rb") as upload:
        return archive_kind(upload.read(512)) == "zip"


def _scan_source(
    ctx: ScanContext, scan: Scan, source: Source, gallery: Gallery, known: _Known
) -> None:
    if not len(gallery):
        raise ScanFailed("The owner has no reference photo yet, so there is nothing to look for.")
    counted = _counted_ahead(source)
    if scan.photos_total is None and counted:
        scan.photos_total = sum(1 for _ in _items(ctx, source))
        _checkpoint(ctx, scan, [], scan.photos_done, known)
    skipped = itertools.islice(_items(ctx, source), scan.photos_done, None)
    batch: list[tuple[PhotoItem, PhotoScan]] = []
    last = time.monotonic()
    with Scanner(gallery, ctx.thresholds, workers=ctx.workers, thumbnails=True) as scanner:
        for item, result in scanner.scan(skipped):
            batch.append((item, result))
            if time.monotonic() - last >= CHECKPOINT_SECONDS:
                _checkpoint(ctx, scan, batch, scan.photos_done + len(batch), known)
                batch, last = [], time.monotonic()
    if not counted:
        scan.photos_total = scan.photos_done + len(batch)  # known now that the source ended
    _checkpoint(ctx, scan, batch, scan.photos_done + len(batch), known)


def _checkpoint(
    ctx: ScanContext,
    scan: Scan,
    batch: list[tuple[PhotoItem, PhotoScan]],
    done: int,
    known: _Known,
) -> None:
    """Record the new matches of `batch` and the new resume point in one transaction."""
    batch = [(item, _new_only(result, known)) for item, result in batch]
    found = 0
    with unit_of_work(ctx.db) as session:
        moved = session.execute(
            update(Scan)
            .where(col(Scan.id) == scan.id, col(Scan.attempts) == scan.attempts)
            .values(
                photos_done=done,
                photos_total=scan.photos_total,
                matches=Scan.matches + sum(len(r.matches) for _, r in batch),
                lease_until=utcnow() + ctx.lease,
            )
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise _LeaseLost
        for item, result in batch:
            found += _add_matches(session, ctx, scan, item, result)
    scan.photos_done = done
    scan.matches += found


def _new_only(result: PhotoScan, known: _Known) -> PhotoScan:
    fresh = tuple(f for f in result.matches if known.is_new(result.digest, f.encoding))
    return result if len(fresh) == len(result.matches) else replace(result, matches=fresh)


def _add_matches(
    session: Session, ctx: ScanContext, scan: Scan, item: PhotoItem, result: PhotoScan
) -> int:
    assert scan.id is not None
    for face in result.matches:
        session.add(
            Match(
                owner_id=scan.owner_id,
                friend_id=scan.friend_id,
                scan_id=scan.id,
                photo=item.key,
                box_key=",".join(map(str, face.box)),
                box=list(face.box),
                platform=item.platform,
                post_url=item.post_url,
                album=item.album,
                taken_at=item.taken_at,
                caption=item.caption,
                distance=face.distance,
                band=face.band,
                sealed_encoding=ctx.box.seal(face.encoding),
                thumbnail=result.thumbnail,
                thumbnail_scale=result.thumbnail_scale,
                photo_digest=result.digest,
            )
        )
    return len(result.matches)


def _finish(ctx: ScanContext, scan: Scan, status: str, error: str | None) -> None:
    with unit_of_work(ctx.db) as session:
        row = session.get(Scan, scan.id)
        if row is None:  # the friend withdrew or the owner left while we scanned
            return
        row.status, row.error, row.finished_at, row.lease_until = status, error, utcnow(), None
        session.add(row)
        source = session.get(Source, row.source_id)
        if source is not None and source.upload_path:
            Path(source.upload_path).unlink(missing_ok=True)  # the upload never outlives its scan
            source.upload_path = None
            session.add(source)
