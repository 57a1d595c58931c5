"""Verification: public photos are looked at again until they are gone, and watched after.

A confirmed match with a public image URL (found on a profile or a web page) is re-checked every
`PHOTO_REMOVAL_VERIFY_EVERY`: a 404/410 for the image or its post, or a post page that no longer
holds the image, marks the item removed with `verified_at`, and once every public photo of its
post is gone the owner is told. A photo that comes back reopens its item and tells the owner.
Requests are conditional and paced; failures back off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Engine, update
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from service.audit import record
from service.db import unit_of_work
from service.ingest.fetch import Fetcher, FetchError, FetchOptions
from service.notify import owner_mails
from service.notify.mail import compose
from service.posts import Post, posts
from service.states import Answer, Review
from service.tables import AuditEvent, Friend, Match, Owner

log = logging.getLogger(__name__)
CHECKS_PER_ROUND = 50
MAX_BACKOFF = timedelta(days=7)
WATCHED = (Answer.open, Answer.removed, Answer.private)  # keep, not me: the last word
GONE = (404, 410)


@dataclass(frozen=True)
class Verdict:
    present: bool | None  # None: could not tell (error, or not modified since last time)
    etag: str | None = None
    last_modified: str | None = None


def due_checks(db: Engine, now: datetime) -> list[int]:
    with Session(db) as session:
        rows = session.exec(
            select(Match.id)
            .where(*_watched(), col(Match.next_check_at) <= now)
            .order_by(col(Match.next_check_at))
            .limit(CHECKS_PER_ROUND)
        ).all()
    return [r for r in rows if r is not None]


def _watched() -> tuple[ColumnElement[bool], ...]:
    return (col(Match.review) == Review.confirmed, col(Match.status).in_(WATCHED))


def run_due_checks(
    db: Engine, options: FetchOptions, interval: timedelta, now: datetime, base_url: str
) -> list[int]:
    """Check every due item; returns the ids of mails to send (posts gone, photos come back).

    Each item is claimed first (its next check pushed on), then fetched with no transaction
    open, then settled in a transaction of its own. An item whose check fails is logged and
    looked at again at its next check; it never stops the others.
    """
    mails = []
    with Fetcher(options) as fetcher:
        for match_id in due_checks(db, now):
            try:
                match = _claim(db, match_id, interval, now)
                if match is None:
                    continue  # another worker checks it, or it is no longer watched
                verdict = look(fetcher, match)
                with unit_of_work(db) as session:
                    mail_id = settle(session, match_id, verdict, interval, now, base_url)
            except Exception:
                log.exception("checking match %s failed; it is checked again later", match_id)
                continue
            if mail_id is not None:
                mails.append(mail_id)
    return mails


def _claim(db: Engine, match_id: int, interval: timedelta, now: datetime) -> Match | None:
    """Take a due check for this worker: one conditional UPDATE pushes the next check on."""
    with unit_of_work(db) as session:
        claimed = session.execute(
            update(Match)
            .where(col(Match.id) == match_id, col(Match.next_check_at) <= now, *_watched())
            .values(next_check_at=now + interval)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        match = session.get_one(Match, match_id)
    return match if match.photo.startswith(("http://", "https://")) else None


def settle(
    session: Session,
    match_id: int,
    verdict: Verdict,
    interval: timedelta,
    now: datetime,
    base_url: str,
) -> int | None:
    """Record what a check saw; returns the id of a mail to send (its post is gone from the web,
    or the photo came back)."""
    match = session.get(Match, match_id)
    if match is None:  # deleted while we looked
        return None
    if verdict.present is None:
        match.check_failures += 1
        match.next_check_at = now + min(interval * 2**match.check_failures, MAX_BACKOFF)
        session.add(match)
        return None
    match.check_failures = 0
    match.check_etag, match.check_last_modified = verdict.etag, verdict.last_modified
    match.next_check_at = now + interval
    session.add(match)
    if not verdict.present and match.verified_at is None:
        match.status, match.verified_at = Answer.removed, now
        return _gone(session, base_url, match, now)
    elif verdict.present and match.verified_at is not None:
        return _reopen(session, match, now)
    return None


def _gone(session: Session, base_url: str, match: Match, now: datetime) -> int | None:
    """Record the removal seen, and tell the owner once the post holds no public photo: a
    carousel taken down is one mail, not one per photo."""
    number = _removals(session, match) + 1  # counted before this one is recorded
    item = listed_post(session, match)
    gone = not any(_public(m) and m.verified_at is None for m in item.matches)
    record(
        session,
        match.owner_id,
        "system",
        "removal_verified",
        match_id=match.id,
        friend_id=match.friend_id,
        post_gone=gone,
    )
    owner, friend = session.get(Owner, match.owner_id), session.get(Friend, match.friend_id)
    if not gone or owner is None or friend is None:
        return None
    mail = owner_mails.removal_verified(session, base_url, owner, friend, item, now, number)
    return mail.id if mail else None


def listed_post(session: Session, match: Match) -> Post:
    """The post the photo is part of, on the friend's list."""
    listed = session.exec(
        select(Match)
        .where(Match.friend_id == match.friend_id, Match.review == Review.confirmed)
        .options(defer(Match.thumbnail), defer(Match.owner_view))  # type: ignore[arg-type]
    ).all()
    return next((item for item in posts(listed) if item.has(match.id or 0)), Post((match,)))


def _public(match: Match) -> bool:
    """Watched by the re-checks: its image is on the web, and its answer leaves it open to them."""
    return match.photo.startswith(("http://", "https://")) and match.status in WATCHED


def look(fetcher: Fetcher, match: Match) -> Verdict:
    """Is the photo still public? Asks for the image, then for the post page that showed it."""
    try:
        image = fetcher.get(match.photo, max_bytes=64 * 2**20, headers=_conditional(match))
        if image.status in GONE:
            return Verdict(present=False)
        if image.status >= 400:
            return Verdict(present=None)
        etag, modified = match.check_etag, match.check_last_modified  # 304: unchanged
        if image.status != 304:
            etag, modified = image.headers.get("etag"), image.headers.get("last-modified")
        # The image may outlive its post (platforms keep media files a while): the post decides.
        if match.post_url and match.post_url != match.photo:
            page = fetcher.get(match.post_url, max_bytes=8 * 2**20)
            if page.status in GONE or (page.status == 200 and not _holds(page.text(), match)):
                return Verdict(False, etag, modified)
        return Verdict(True, etag, modified)
    except FetchError as e:
        log.info("could not check match %s: %s", match.id, e)
        return Verdict(present=None)


def _conditional(match: Match) -> dict[str, str]:
    headers = {}
    if match.check_etag:
        headers["If-None-Match"] = match.check_etag
    if match.check_last_modified:
        headers["If-Modified-Since"] = match.check_last_modified
    return headers


def _holds(page: str, match: Match) -> bool:
    """The post page still refers to the image (by its URL or its file name)."""
    path = urlsplit(match.photo).path
    name = path.rsplit("/", 1)[-1]
    return match.photo in page or (bool(name) and name in page)


def _reopen(session: Session, match: Match, now: datetime) -> int | None:
    match.status, match.verified_at, match.answered_at = Answer.open, None, None
    record(session, match.owner_id, "system", "photo_back", match_id=match.id)
    owner = session.get(Owner, match.owner_id)
    friend = session.get(Friend, match.friend_id)
    if owner is None or friend is None or owner.id is None:
        return None
    mail = compose(
        session,
        kind="photo_back",
        key=f"photo_back:{match.id}:{_removals(session, match)}",
        to=owner.email,
        owner_id=owner.id,
        friend_id=None,
        context={
            "owner_name": owner.name,
            "friend_name": friend.name,
            "photo": match.photo,
            "post_url": match.post_url,
        },
    )
    return mail.id if mail else None


def _removals(session: Session, match: Match) -> int:
    """How many times the photo was verified removed: its n-th return follows the n-th removal,
    so two checks that both see the same return agree on the mail's key (and send it once)."""
    verified = session.exec(
        select(AuditEvent.detail).where(
            AuditEvent.owner_id == match.owner_id, AuditEvent.action == "removal_verified"
        )
    ).all()
    return sum(1 for detail in verified if detail.get("match_id") == match.id)
