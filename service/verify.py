"""Verification: public photos are looked at again until they are gone, and watched after.

A confirmed match with a public image URL (found on a profile or a web page) is re-checked every
`PHOTO_REMOVAL_VERIFY_EVERY`: a 404/410 for the image or its post, or a post page that no longer
holds the image, marks the item removed with `verified_at`. A photo that comes back reopens its
item and tells the owner. Requests are conditional and paced; failures back off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.audit import record
from service.db import unit_of_work
from service.ingest.fetch import Fetcher, FetchError, FetchOptions
from service.notify.mail import compose
from service.tables import Friend, Match, Owner

log = logging.getLogger(__name__)
CHECKS_PER_ROUND = 50
MAX_BACKOFF = timedelta(days=7)
WATCHED = ("open", "removed", "private")  # "keep" and "not me" are the friend's last word
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
            .where(
                col(Match.next_check_at) <= now,
                Match.review == "confirmed",
                col(Match.status).in_(WATCHED),
            )
            .order_by(col(Match.next_check_at))
            .limit(CHECKS_PER_ROUND)
        ).all()
    return [r for r in rows if r is not None]


def run_due_checks(
    db: Engine, options: FetchOptions, interval: timedelta, now: datetime
) -> list[int]:
    """Check every due item; returns the ids of mails to send (photos that came back)."""
    mails = []
    with Fetcher(options) as fetcher:
        for match_id in due_checks(db, now):
            with unit_of_work(db) as session:
                mail_id = check(session, fetcher, match_id, interval, now)
            if mail_id is not None:
                mails.append(mail_id)
    return mails


def check(
    session: Session, fetcher: Fetcher, match_id: int, interval: timedelta, now: datetime
) -> int | None:
    match = session.get(Match, match_id)
    if match is None or not match.photo.startswith(("http://", "https://")):
        return None
    verdict = look(fetcher, match)
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
        match.status, match.verified_at = "removed", now
        record(session, match.owner_id, "system", "removal_verified", match_id=match.id)
    elif verdict.present and match.verified_at is not None:
        return _reopen(session, match, now)
    return None


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
    match.status, match.verified_at, match.answered_at = "open", None, None
    record(session, match.owner_id, "system", "photo_back", match_id=match.id)
    owner = session.get(Owner, match.owner_id)
    friend = session.get(Friend, match.friend_id)
    if owner is None or friend is None or owner.id is None:
        return None
    mail = compose(
        session,
        kind="photo_back",
        key=f"photo_back:{match.id}:{now.isoformat()}",
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
