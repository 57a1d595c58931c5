"""What happened lately, for the owner's dashboard: a friend accepted, declined or withdrew, a
scan found photos, a list was answered or finished, a photo was seen gone from the web. Read
from what is recorded already: the audit trail, the scans and the matches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from service.notify.owner_mails import photo_words, tally
from service.states import ScanStatus
from service.tables import AuditEvent, Friend, Match, Owner, Scan
from service.verify import listed_post

SHOWN = 8
BY_FRIENDS = (  # what a friend did, as the audit trail names it
    "consent_given",
    "declined",
    "consent_withdrawn",
    "list_answered",
    "list_finished",
)


@dataclass(frozen=True)
class Event:
    at: datetime
    text: str  # what happened, in a sentence without its full stop
    url: str  # where the owner sees it, or acts on it


def latest(session: Session, owner: Owner, limit: int = SHOWN) -> list[Event]:
    """The owner's latest events, newest first. Those about a friend since removed are left
    out: their page is gone, and so is what they shared."""
    friends = {
        friend.id: friend
        for friend in session.exec(select(Friend).where(Friend.owner_id == owner.id)).all()
    }
    events = _recorded(session, owner, friends, limit) + _scanned(session, owner, friends, limit)
    return sorted(events, key=lambda event: event.at, reverse=True)[:limit]


def _recorded(
    session: Session, owner: Owner, friends: dict[int | None, Friend], limit: int
) -> list[Event]:
    rows = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.owner_id == owner.id,
            col(AuditEvent.action).in_((*BY_FRIENDS, "removal_verified")),
        )
        .order_by(col(AuditEvent.id).desc())
        .limit(limit * 4)  # a carousel's photos each record their removal; one tells of it
    ).all()
    events = []
    for row in rows:
        if row.action == "removal_verified":
            told = _verified(session, row, friends)
        else:
            friend = friends.get(_friend_id(row))
            told = _about_friend(row, friend) if friend is not None else None
        if told is not None:
            events.append(told)
    return events


def _friend_id(row: AuditEvent) -> int | None:
    kind, _, number = row.actor.partition(":")
    return int(number) if kind == "friend" and number.isdigit() else None


def _about_friend(row: AuditEvent, friend: Friend) -> Event:
    name, page = friend.name, f"/friends/{friend.id}"
    said = {
        "consent_given": f"{name} accepted your invitation",
        "declined": f"{name} declined your invitation",
        "consent_withdrawn": f"{name} withdrew their consent",
        "list_answered": f"{name} answered {_photos(row.detail.get('items', 0))} on their list",
        "list_finished": f"{name} finished their list: {tally(row.detail)}",
    }[row.action]
    on_list = row.action.startswith("list_")
    return Event(row.at, said, f"{page}#checklist" if on_list else page)


def _verified(session: Session, row: AuditEvent, friends: dict[int | None, Friend]) -> Event | None:
    """A post gone from the web (told once, by the removal of its last public photo)."""
    match = session.get(Match, row.detail.get("match_id"))
    friend = friends.get(match.friend_id) if match is not None else None
    if match is None or friend is None or not row.detail.get("post_gone", True):
        return None
    words = photo_words(listed_post(session, match))
    said = f"A photo {friend.name} posted is gone from the web: {words}"
    return Event(row.at, said, f"/friends/{friend.id}#checklist")


def _scanned(
    session: Session, owner: Owner, friends: dict[int | None, Friend], limit: int
) -> list[Event]:
    """Each finished scan of the owner's friends' photos, with the matches it found for them (a
    family circle's scan is the friend's one for every member)."""
    found: dict[int, tuple[int, int]] = {
        scan_id: (friend_id, count)
        for scan_id, friend_id, count in session.exec(
            select(Match.scan_id, Match.friend_id, func.count())
            .where(Match.owner_id == owner.id)
            .group_by(col(Match.scan_id), col(Match.friend_id))
        ).all()
    }
    scans = session.exec(
        select(Scan)
        .where(
            or_(col(Scan.owner_id) == owner.id, col(Scan.id).in_(list(found))),
            Scan.status == ScanStatus.done,
            col(Scan.finished_at).is_not(None),
        )
        .order_by(col(Scan.finished_at).desc())
        .limit(limit)
    ).all()
    events = []
    for scan in scans:
        friend_id, count = found.get(scan.id or 0, (scan.friend_id, 0))
        friend = friends.get(friend_id)
        if friend is None or scan.finished_at is None:
            continue
        said = (
            f"We found {_photos(count)} that may show you in what {friend.name} shared"
            if count
            else f"We looked through what {friend.name} shared: no photo of you"
        )
        events.append(Event(scan.finished_at, said, f"/friends/{friend.id}"))
    return events


def _photos(count: int) -> str:
    return f"{count} photo{'' if count == 1 else 's'}"
