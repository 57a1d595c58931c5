"""Scanning a friend's source for the owner's face: a resumable job that commits as it goes.

A scan records how many photos of its source (in source order) are done together with the faces
found in them (sealed), in one transaction. A killed worker's scan is picked up again when its lease
runs out and continues after the last recorded photo, so no face is lost or counted twice. When the
source ends, the scan decides on all its faces at once (service/faces/decision.py), files the
proposals under the owner's look-alike groups, and deletes the faces with the upload.

Every write a worker makes to its scan is one conditional UPDATE whose rowcount must be 1: the
claim sets `attempts` to a new value, and the checkpoints, the heartbeat and the finish all require
that value and `running`. A worker whose lease ran out and was taken over can therefore neither
record progress nor finish (nor delete the upload its successor is reading).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import ColumnElement, Engine, and_, delete, func, or_, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from service import invites, reencode, standby
from service.db import remove_after_commit, unit_of_work
from service.faces import ENCODER
from service.faces.decision import Cohort, DecisionRule, Proposal, decide
from service.faces.matching import Gallery, Thresholds
from service.faces.scanner import PhotoScan, Scanner
from service.ingest.archives import ArchiveError, archive_kind
from service.ingest.empty import no_photo_found
from service.ingest.exports import iter_export
from service.ingest.fetch import FetchOptions
from service.ingest.items import PhotoItem
from service.ingest.profiles import UnreadableLink, read_profile
from service.match_groups import OwnerGroups
from service.notify import owner_mails
from service.scan_faces import NearFace, ScanFaces, pack, thumbnails, unpack
from service.secrets_box import SecretBox
from service.states import Band, FriendStatus, Review, ScanStatus, SourceKind
from service.tables import (
    Friend,
    Match,
    MatchGroup,
    Owner,
    ReferenceFace,
    Scan,
    ScanChunk,
    Source,
    utcnow,
)
from service.uploads import parts_of

log = logging.getLogger(__name__)
CHECKPOINT_SECONDS = 2.0
# A face this close to one the owner rejected ("not me") is that face again, in the same photo or
# a copy of it: it is not proposed a second time.
REJECTED_RADIUS = 0.35
# A source that took its worker down this many times (out of memory, a crash in a native decoder
# that killed the process) fails with a message instead of being retried forever.
MAX_ATTEMPTS = 5


class ScanFailed(Exception):
    """The scan cannot go on; the message is shown to the friend and the owner."""


@dataclass(frozen=True)
class _Known:
    """What earlier scans of this owner settled: photos already proposed, faces rejected."""

    digests: set[str]
    rejected: np.ndarray

    def is_new(self, digest: str, encoding: np.ndarray) -> bool:
        """Neither a photo proposed before nor a face the owner already said is not them."""
        if digest and digest in self.digests:
            return False
        if not len(self.rejected):
            return True
        return bool(np.linalg.norm(self.rejected - encoding, axis=1).min() > REJECTED_RADIUS)


@dataclass(frozen=True)
class _Member:
    """One person the scan looks for: an owner the friend agreed to help, with the friend's
    invitation from them (their matches go there) and what their earlier scans settled."""

    owner_id: int
    friend_id: int
    known: _Known


@dataclass(frozen=True)
class ScanContext:
    db: Engine
    box: SecretBox
    thresholds: Thresholds
    rule: DecisionRule
    workers: int | None
    fetch: FetchOptions = field(default_factory=FetchOptions)
    lease: timedelta = timedelta(minutes=2)
    # Set when the process is asked to stop (SIGTERM): the scan records the photos it has
    # finished, gives the rest back to the queue and returns.
    stopping: threading.Event = field(default_factory=threading.Event)
    base_url: str = ""  # how links in the owners' mails start
    # Sends a mail the scan wrote (the owner's "photos to review"), once it is committed.
    send_mail: Callable[[int], object] | None = None


# A queued scan is handed to the queue when its row commits; one still queued after this long
# may have lost its job (a crash between the commit and the send).
QUEUED_GRACE = timedelta(minutes=1)


def _frozen_owners() -> SelectOfScalar[int | None]:
    """Owners a friend reported: no scan of theirs runs until the admin clears them."""
    return select(col(Owner.id)).where(col(Owner.frozen_at).is_not(None))


def waiting_scans(db: Engine, now: datetime) -> list[int]:
    """Scans that need a worker and may have no job in the queue: running ones whose worker
    stopped renewing its lease (it is gone), and queued ones past the grace."""
    with Session(db) as session:
        rows = session.exec(
            select(Scan.id).where(
                col(Scan.owner_id).not_in(_frozen_owners()),
                or_(
                    and_(col(Scan.status) == ScanStatus.running, col(Scan.lease_until) < now),
                    and_(
                        col(Scan.status) == ScanStatus.queued,
                        col(Scan.created_at) < now - QUEUED_GRACE,
                    ),
                ),
            )
        )
        return [scan_id for scan_id in rows if scan_id is not None]


def run_scan(ctx: ScanContext, scan_id: int) -> bool:
    """The job: scan the source from where it stopped, then delete its upload. Idempotent.

    Returns True when the scan was given back unfinished (the process is stopping): the caller
    queues it again, and whichever worker takes it resumes after its last checkpoint.
    """
    _bring_up_to_date(ctx, scan_id)
    claimed = _claim(ctx, scan_id)
    if claimed is None:
        return False
    scan, source, gallery, members = claimed
    log.info("scan %s: attempt %s, from photo %s", scan_id, scan.attempts, scan.photos_done)
    if scan.attempts > MAX_ATTEMPTS:
        _finish(ctx, scan, ScanStatus.failed, _TOO_MANY_ATTEMPTS.format(n=MAX_ATTEMPTS))
        return False
    try:
        with _Heartbeat(ctx, scan) as heartbeat:
            _scan_source(ctx, scan, source, gallery, heartbeat)
        _decide(ctx, scan, gallery, members)
        _finish(ctx, scan, ScanStatus.done, None)
    except (ScanFailed, ArchiveError, UnreadableLink) as e:
        _finish(ctx, scan, ScanStatus.failed, str(e))
    except _GivenBack:
        log.info("scan %s given back after %s photos", scan_id, scan.photos_done)
        return True
    except _LeaseLost:
        log.warning("scan %s was taken over by another worker", scan_id)
    except Exception:
        log.exception("scan %s failed", scan_id)
        _finish(
            ctx, scan, ScanStatus.failed, "Something went wrong while scanning; please try again."
        )
    return False


_TOO_MANY_ATTEMPTS = (
    "This source stopped the scanner {n} times, so it was set aside. Try uploading it again, "
    "or as smaller parts."
)


class _LeaseLost(Exception):
    pass


class _GivenBack(Exception):
    pass


def _held(scan: Scan) -> tuple[ColumnElement[bool], ...]:
    """The condition of every write under a lease: still running, still this worker's claim."""
    return (
        col(Scan.id) == scan.id,
        col(Scan.attempts) == scan.attempts,
        col(Scan.status) == ScanStatus.running,
    )


def _renew(session: Session, ctx: ScanContext, scan: Scan, **values: object) -> None:
    """Extend the lease (and write `values`) in one UPDATE, or raise _LeaseLost."""
    moved = session.execute(
        update(Scan).where(*_held(scan)).values(lease_until=utcnow() + ctx.lease, **values)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise _LeaseLost


def _claim(
    ctx: ScanContext, scan_id: int
) -> tuple[Scan, Source, Gallery, dict[str, _Member]] | None:
    """Take the scan if it is queued or its lease ran out, in one conditional UPDATE (the same on
    SQLite, where SELECT ... FOR UPDATE locks nothing, and on PostgreSQL)."""
    now = utcnow()
    with unit_of_work(ctx.db) as session:
        claimed = session.execute(
            update(Scan)
            .where(
                col(Scan.id) == scan_id,
                col(Scan.owner_id).not_in(_frozen_owners()),  # reported: waits for the admin
                or_(
                    col(Scan.status) == ScanStatus.queued,
                    and_(
                        col(Scan.status) == ScanStatus.running,
                        or_(col(Scan.lease_until).is_(None), col(Scan.lease_until) < now),
                    ),
                ),
            )
            .values(
                status=ScanStatus.running,
                attempts=Scan.attempts + 1,
                started_at=func.coalesce(Scan.started_at, now),
                lease_until=now + ctx.lease,
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None  # finished, gone, or another worker holds it
        scan = session.get_one(Scan, scan_id)
        source = session.get_one(Source, scan.source_id)
        members, codes = {}, {}
        for friend in _helped(session, scan):
            refs = session.exec(
                select(ReferenceFace.sealed_encoding).where(
                    ReferenceFace.owner_id == friend.owner_id, ReferenceFace.encoder == ENCODER
                )
            ).all()
            assert friend.id is not None
            key = str(friend.owner_id)
            members[key] = _Member(friend.owner_id, friend.id, _known(ctx, session, scan, friend))
            codes[key] = np.array([ctx.box.open(sealed) for sealed in refs])
    return scan, source, Gallery(codes, over=ctx.rule.references), members


def _bring_up_to_date(ctx: ScanContext, scan_id: int) -> None:
    """Make again what the members' decisions compare that an earlier encoder made (their
    references, rejected faces and group centres; service/reencode.py), before the claim: making
    many again may take longer than a lease."""
    with unit_of_work(ctx.db) as session:
        scan = session.get(Scan, scan_id)
        if scan is None or scan.status not in (ScanStatus.queued, ScanStatus.running):
            return
        owners = {friend.owner_id for friend in _helped(session, scan)}
    for owner_id in sorted(owners):
        try:
            with unit_of_work(ctx.db) as session:
                reencode.bring_up_to_date(
                    session,
                    ctx.box,
                    owner_id,
                    lambda: reencode.engine_for(ctx.thresholds.detector_min_score),
                )
        except Exception:  # what was not made again stays left out; the scan goes on
            log.exception("scan %s: owner %s's encodings were not made again", scan_id, owner_id)


def _helped(session: Session, scan: Scan) -> list[Friend]:
    """Whom the scan looks for: the owner of the link the friend shared through and, in a family
    circle, every member who asks the same friend, each one the friend accepted and no report
    has frozen. One upload, one scan, each face going to its nearest member."""
    friend = session.get(Friend, scan.friend_id)
    if friend is None:
        return []
    frozen = set(session.exec(_frozen_owners()).all())
    return [
        f
        for f in invites.siblings(session, friend)
        if f.status == FriendStatus.accepted and f.owner_id not in frozen
    ]


class _Heartbeat:
    """Renews the lease every third of its length while photos are scanned, so one slow photo or
    one slow fetch never outlasts it; notes when the lease was lost, for the scan loop to stop."""

    def __init__(self, ctx: ScanContext, scan: Scan) -> None:
        self._ctx, self._scan = ctx, scan
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{scan.id}", daemon=True)
        self.lost = False

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._ctx.lease.total_seconds() / 3):
            try:
                with unit_of_work(self._ctx.db) as session:
                    _renew(session, self._ctx, self._scan)
            except _LeaseLost:
                self.lost = True
                return
            except Exception:  # the database blinked: the next beat tries again
                log.warning("scan %s: could not renew the lease", self._scan.id, exc_info=True)

    def check(self) -> None:
        if self.lost:
            raise _LeaseLost


def _known(ctx: ScanContext, session: Session, scan: Scan, friend: Friend) -> _Known:
    """Photos the friend's earlier scans proposed to this member (so a re-scan proposes only new
    ones), and every face this member rejected."""
    digests = session.exec(
        select(Match.photo_digest).where(
            Match.friend_id == friend.id, col(Match.scan_id) != scan.id
        )
    ).all()
    rejected = session.exec(
        select(Match.sealed_encoding).where(
            Match.owner_id == friend.owner_id,
            Match.review == Review.rejected,
            Match.encoder == ENCODER,  # one the scan could not make again is left out
        )
    ).all()
    codes = np.array([ctx.box.open(sealed) for sealed in rejected]).reshape(-1, 128)
    return _Known(digests={d for d in digests if d}, rejected=codes)


def _items(ctx: ScanContext, source: Source) -> Iterator[PhotoItem]:
    if source.kind == SourceKind.profile:
        return iter(read_profile(source.label, ctx.fetch))
    if source.upload_path is None:
        raise ScanFailed("The uploaded file is no longer here; please upload it again.")
    return iter_export(parts_of(Path(source.upload_path)))


def _counted_ahead(source: Source) -> bool:
    """Only a ZIP export is counted before scanning: its directory lists the photos at once.

    A TAR is a stream (counting would mean decompressing it all once more), and a profile's
    listing fetches its pages and may change meanwhile: those totals are known at the end.
    """
    if source.kind != SourceKind.export or source.upload_path is None:
        return False
    return all(_is_zip(part) for part in parts_of(Path(source.upload_path)))


def _is_zip(path: Path) -> bool:
    with path.open("rb") as upload:
        return archive_kind(upload.read(512)) == "zip"


def _scan_source(
    ctx: ScanContext, scan: Scan, source: Source, gallery: Gallery, heartbeat: _Heartbeat
) -> None:
    if not len(gallery):
        raise ScanFailed(
            "Nobody you agreed to help has a reference photo yet, so there is nothing to look for."
        )
    counted = _counted_ahead(source)
    if scan.photos_total is None and counted:
        scan.photos_total = sum(1 for _ in _items(ctx, source))
        _checkpoint(ctx, scan, [], scan.photos_done)
    skipped = itertools.islice(_items(ctx, source), scan.photos_done, None)
    batch: list[tuple[PhotoItem, PhotoScan]] = []
    last = time.monotonic()
    with Scanner(gallery, ctx.thresholds, workers=ctx.workers, thumbnails=True) as scanner:
        for item, result in scanner.scan(skipped):
            heartbeat.check()
            batch.append((item, result))
            if ctx.stopping.is_set():
                _give_back(ctx, scan, batch)
            if time.monotonic() - last >= CHECKPOINT_SECONDS:
                _checkpoint(ctx, scan, batch, scan.photos_done + len(batch))
                batch, last = [], time.monotonic()
    if not counted:
        scan.photos_total = scan.photos_done + len(batch)  # known now that the source ended
    _checkpoint(ctx, scan, batch, scan.photos_done + len(batch))
    if not scan.photos_total:  # nothing to look through is not a success: say why, and what now
        if source.kind == SourceKind.export and source.upload_path:
            raise ScanFailed(no_photo_found(parts_of(Path(source.upload_path))))
        raise ScanFailed(
            "We found no photo at that link. Is the profile public, and does it hold photos?"
        )


def _checkpoint(
    ctx: ScanContext,
    scan: Scan,
    batch: list[tuple[PhotoItem, PhotoScan]],
    done: int,
) -> None:
    """Record the faces of `batch` and the new resume point in one transaction."""
    with unit_of_work(ctx.db) as session:
        _renew(session, ctx, scan, photos_done=done, photos_total=scan.photos_total)
        if any(result.faces for _, result in batch):
            assert scan.id is not None
            sealed = ctx.box.seal_bytes(pack(batch, ctx.rule.reach))
            session.add(ScanChunk(scan_id=scan.id, seq=scan.photos_done, sealed=sealed))
    scan.photos_done = done


def _give_back(ctx: ScanContext, scan: Scan, batch: list[tuple[PhotoItem, PhotoScan]]) -> None:
    """Record what is done and hand the scan back to the queue, lease released."""
    _checkpoint(ctx, scan, batch, scan.photos_done + len(batch))
    with unit_of_work(ctx.db) as session:
        session.execute(
            update(Scan).where(*_held(scan)).values(status=ScanStatus.queued, lease_until=None)
        )
    raise _GivenBack


def _decide(ctx: ScanContext, scan: Scan, gallery: Gallery, members: dict[str, _Member]) -> None:
    """Propose each member's faces on the evidence of the whole source; forget every other face.

    The faces are read, then decided with no transaction open (a large export takes seconds),
    then the proposals are written in one transaction that checks the lease is still ours.
    Each face goes to its nearest member: the distances are taken again here, to the members
    as they are now (one may have joined or left since a batch was sealed).
    """
    with Session(ctx.db) as session:  # one sealed batch in memory at a time
        batches = _batches(session, scan)
        faces = ScanFaces.join(unpack(_opened(ctx, session, b)) for b in batches)
    cohort = Cohort(faces.cohort.encodings, gallery.distances(faces.cohort.encodings))
    by_face = {f.face: f for f in faces.near}
    photos = [by_face[i].photo if i in by_face else None for i in range(len(cohort))]
    rule = ctx.rule
    proposals = [  # with the faces that wait behind a nearer one of their photo
        p
        for p in decide(
            cohort,
            gallery.names,
            gallery.centres(),
            rule,
            photos,
            prints=faces.prints,
            standby=True,
        )
        if p.face in by_face  # near a member when scanned: its pictures were kept
        and members[p.person].known.is_new(by_face[p.face].digest, cohort.encodings[p.face])
    ]
    with unit_of_work(ctx.db) as session:
        _renew(session, ctx, scan)
        # Thumbnails and owner views are read only for the faces proposed.
        pictures = _thumbnails(ctx, session, batches, [by_face[p.face] for p in proposals])
        filing = _Filing(ctx, session, scan, by_face, cohort, pictures)
        added, mails = 0, []
        found: dict[str, int] = {}  # each member's matches added by this scan
        # A member the friend stopped helping while the scan ran gets nothing.
        helped = {f.id for f in _helped(session, session.get_one(Scan, scan.id))}
        for person in gallery.names:
            member = members[person]
            if member.friend_id not in helped:
                continue
            found[person] = filing.file(member, [p for p in proposals if p.person == person])
            added += found[person]
            mail = owner_mails.scan_done(
                session,
                ctx.base_url,
                member.owner_id,
                session.get_one(Friend, member.friend_id),
                scan.id or 0,
                found[person],
            )
            mails += [mail.id] if mail is not None and mail.id is not None else []
        session.execute(delete(ScanChunk).where(col(ScanChunk.scan_id) == scan.id))
        session.execute(update(Scan).where(col(Scan.id) == scan.id).values(matches=added))
    scan.matches = added
    for mail_id in mails:  # committed: the owners hear now, not at the next sweep
        if ctx.send_mail is not None:
            ctx.send_mail(mail_id)


def _batches(session: Session, scan: Scan) -> list[int]:
    ids = session.exec(
        select(ScanChunk.id).where(ScanChunk.scan_id == scan.id).order_by(col(ScanChunk.seq))
    ).all()
    return [i for i in ids if i is not None]


def _opened(ctx: ScanContext, session: Session, chunk_id: int) -> bytes:
    sealed = session.exec(select(ScanChunk.sealed).where(ScanChunk.id == chunk_id)).one()
    return ctx.box.open_bytes(sealed)


def _thumbnails(
    ctx: ScanContext, session: Session, batches: list[int], faces: list[NearFace]
) -> dict[tuple[int, str], bytes]:
    wanted: dict[int, set[str]] = {}
    for face in faces:
        wanted.setdefault(face.batch, set()).update((face.thumb, face.view))
    return {
        (batch, key): picture
        for batch, keys in wanted.items()
        for key, picture in thumbnails(_opened(ctx, session, batches[batch]), keys).items()
    }


@dataclass
class _Filing:
    """Files one scan's proposals under each member's look-alike groups, as matches.

    Each photo is proposed once, by its nearest face; the photo's other faces the rule kept wait
    behind that match (service/standby.py). A face of a group the member rejected is not
    proposed, and the next face of its photo is asked about instead."""

    ctx: ScanContext
    session: Session
    scan: Scan
    by_face: dict[int, NearFace]
    cohort: Cohort
    pictures: dict[tuple[int, str], bytes]

    def file(self, member: _Member, proposals: list[Proposal]) -> int:
        """The member's matches added."""
        radius = self.ctx.rule.group_radius
        groups = OwnerGroups(self.session, self.ctx.box, member.owner_id, radius)
        queues = standby.by_photo(proposals, lambda p: self.by_face[p.face].photo)
        placed: dict[int, MatchGroup | None] = {}  # this decision's groups, as the member's
        for grouped in _by_group([q[0] for q in queues if q[0].behind is None]):
            placed[grouped[0].group] = groups.place(self._codes(grouped), alone=grouped[0].alone)

        def group_of(p: Proposal) -> MatchGroup | None:
            if p.group in placed:
                return placed[p.group]  # None: a group the member said is not them
            return groups.place(self._codes([p]), alone=True)  # a decision of its own

        photos = [[(p, g) for p in q if (g := group_of(p)) is not None] for q in queues]
        fronts = sorted((q for q in photos if q), key=lambda q: (q[0][0].group, q[0][0].face))
        matches = [self._match(member, p, group) for (p, group), *_ in fronts]
        self.session.add_all(matches)
        if any(len(q) > 1 for q in fronts):
            self.session.flush()  # the matches' ids, for the faces waiting behind them
        for match, (_, *rest) in zip(matches, fronts, strict=True):
            for p, group in rest:
                face = self.by_face[p.face]
                self.session.add(
                    standby.waiting(
                        match,
                        p,
                        self.ctx.box.seal(self.cohort.encodings[p.face].astype(np.float64)),
                        self.pictures.get((face.batch, face.view)),
                        face.view_box,
                        face.box,
                        group,
                    )
                )
        return len(matches)

    def _codes(self, proposals: list[Proposal]) -> np.ndarray:
        return self.cohort.encodings[[p.face for p in proposals]].astype(np.float64)

    def _match(self, member: _Member, p: Proposal, group: MatchGroup) -> Match:
        assert self.scan.id is not None
        face = self.by_face[p.face]
        return Match(
            owner_id=member.owner_id,
            friend_id=member.friend_id,
            scan_id=self.scan.id,
            photo=face.photo,
            box_key=",".join(map(str, face.box)),
            box=list(face.box),
            platform=face.platform,
            post_url=face.post_url,
            post_key=face.post_key,
            album=face.album,
            taken_at=face.taken_at,
            caption=face.caption,
            distance=p.distance,
            band=Band(p.band),
            sealed_encoding=self.ctx.box.seal(self.cohort.encodings[p.face].astype(np.float64)),
            thumbnail=self.pictures.get((face.batch, face.thumb)),  # the friend's whole photo
            thumbnail_scale=face.thumbnail_scale,
            # the owner's own face, no one else's
            owner_view=self.pictures.get((face.batch, face.view)),
            owner_view_box=face.view_box,
            photo_digest=face.digest,
            group_id=group.id,
        )


def _by_group(proposals: list[Proposal]) -> list[list[Proposal]]:
    groups: dict[int, list[Proposal]] = {}
    for p in proposals:
        groups.setdefault(p.group, []).append(p)
    return [groups[g] for g in sorted(groups)]


def _finish(ctx: ScanContext, scan: Scan, status: ScanStatus, error: str | None) -> None:
    """End the scan if it is still ours; its faces and its upload go with it, either way."""
    with unit_of_work(ctx.db) as session:
        ended = session.execute(
            update(Scan)
            .where(*_held(scan))
            .values(status=status, error=error, finished_at=utcnow(), lease_until=None)
        )
        if ended.rowcount != 1:  # type: ignore[attr-defined]
            # Taken over by a successor (it finishes), or deleted with the friend or owner.
            log.warning("scan %s: no longer ours to mark %s", scan.id, status)
            return
        session.execute(delete(ScanChunk).where(col(ScanChunk.scan_id) == scan.id))
        source = session.get(Source, scan.source_id)
        if source is not None and source.upload_path:
            remove_after_commit(session, [source.upload_path])  # never outlives its scan
            source.upload_path = None
            session.add(source)
