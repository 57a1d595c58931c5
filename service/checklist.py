"""The friend's removal checklist: confirmed matches, one item per photo, and the answers."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from service.audit import record
from service.config import Settings
from service.instructions import instructions_for
from service.invites import token_of
from service.notify.mail import compose
from service.secrets_box import SecretBox
from service.tables import Friend, Match, OutgoingMail, Owner, utcnow

ANSWERS = ("removed", "private", "keep", "not_me")
DIGEST_DELAY = timedelta(minutes=10)  # answers arriving together make one mail to the owner


class ChecklistError(ValueError):
    """The checklist cannot be sent or answered as asked; the message says why."""


def items_of(session: Session, friend: Friend) -> list[Match]:
    """Confirmed matches across all the friend's sources, one per photo, oldest post first."""
    rows = session.exec(
        select(Match)
        .where(Match.friend_id == friend.id, Match.review == "confirmed")
        .order_by(col(Match.taken_at), col(Match.id))
    ).all()
    seen: set[str] = set()
    items = []
    for match in rows:
        key = match.photo_digest or match.photo
        if key not in seen:
            seen.add(key)
            items.append(match)
    return items


def item_of(session: Session, friend: Friend, item_id: int) -> Match | None:
    match = session.get(Match, item_id)
    ok = match is not None and match.friend_id == friend.id and match.review == "confirmed"
    return match if ok else None


def open_count(items: list[Match]) -> int:
    return sum(1 for item in items if item.status == "open")


def link(settings: Settings, box: SecretBox, friend: Friend, page: str = "checklist") -> str:
    return f"{settings.base_url.rstrip('/')}/{page}/{token_of(box, friend)}"


def send(
    session: Session,
    settings: Settings,
    box: SecretBox,
    owner: Owner,
    friend: Friend,
    now: datetime | None = None,
) -> OutgoingMail | None:
    """Mail the friend their checklist and start the reminder schedule from now."""
    now = now or utcnow()
    if friend.status != "accepted":
        raise ChecklistError("this friend has not accepted the invitation (or withdrew)")
    items = items_of(session, friend)
    if not items:
        raise ChecklistError("confirm at least one match before sending the checklist")
    if not open_count(items):
        raise ChecklistError("every photo on this list has an answer already")
    friend.checklist_sent_at = now
    friend.reminders_sent = 0
    offsets = settings.reminder_offsets
    unanswered = open_count(items) and friend.unsubscribed_at is None
    friend.next_reminder_at = now + offsets[0] if offsets and unanswered else None
    session.add(friend)
    for item in items:
        if item.next_check_at is None and _public_url(item):
            item.next_check_at = now + settings.verify_interval
            session.add(item)
    assert owner.id is not None
    record(session, owner.id, "owner", "checklist_sent", friend_id=friend.id, items=len(items))
    key = f"checklist:{friend.id}:{now.isoformat()}"
    return mail_friend(session, settings, box, owner, friend, items, kind="checklist", key=key)


def mail_friend(
    session: Session,
    settings: Settings,
    box: SecretBox,
    owner: Owner,
    friend: Friend,
    items: list[Match],
    *,
    kind: str,
    key: str,
    **extra: object,
) -> OutgoingMail | None:
    """A mail about the friend's list (the checklist, a reminder), with one-click unsubscribe."""
    assert owner.id is not None
    context = {
        "owner_name": owner.name,
        "friend_name": friend.name,
        "count": len(items),
        "open": open_count(items),
        "checklist_url": link(settings, box, friend),
        "unsubscribe_url": link(settings, box, friend, "unsubscribe"),
        **extra,
    }
    return compose(
        session,
        kind=kind,
        key=key,
        to=friend.email,
        owner_id=owner.id,
        friend_id=friend.id,
        context=context,
        headers=unsubscribe_headers(settings, box, friend),
    )


def unsubscribe_headers(settings: Settings, box: SecretBox, friend: Friend) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe: mail clients POST to the URL without opening a page."""
    return {
        "List-Unsubscribe": f"<{link(settings, box, friend, 'unsubscribe')}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _public_url(item: Match) -> str | None:
    for url in (item.post_url, item.photo):
        if url and url.startswith(("http://", "https://")):
            return url
    return None


def answer(
    session: Session, friend: Friend, item: Match, status: str, now: datetime | None = None
) -> Match:
    """Record the friend's answer on every match of that photo; the owner hears in a digest."""
    if status not in ANSWERS:
        raise ChecklistError(f"the answer must be one of {', '.join(ANSWERS)}")
    now = now or utcnow()
    same = (
        (Match.photo_digest == item.photo_digest)
        if item.photo_digest
        else (Match.photo == item.photo)
    )
    same_photo = session.exec(
        select(Match).where(Match.friend_id == friend.id, Match.review == "confirmed", same)
    ).all()
    for match in same_photo or [item]:
        match.status, match.answered_at = status, now
        session.add(match)
    record(
        session,
        friend.owner_id,
        f"friend:{friend.id}",
        "item_answered",
        match_id=item.id,
        status=status,
    )
    owner = session.get(Owner, friend.owner_id)
    if owner is not None and owner.digest_due_at is None:
        owner.digest_due_at = now + DIGEST_DELAY
        session.add(owner)
    if not open_count(items_of(session, friend)):
        friend.next_reminder_at = None  # all answered: no more reminders
        session.add(friend)
    return item


def unsubscribe(session: Session, friend: Friend, now: datetime | None = None) -> None:
    friend.unsubscribed_at = friend.unsubscribed_at or now or utcnow()
    friend.next_reminder_at = None
    session.add(friend)
    record(session, friend.owner_id, f"friend:{friend.id}", "unsubscribed")


def view(item: Match) -> dict[str, object]:
    """What the friend sees of an item (never the distance or the encoding)."""
    return {
        "id": item.id,
        "platform": item.platform,
        "post_url": item.post_url,
        "taken_at": item.taken_at,
        "caption": item.caption,
        "album": item.album,
        "photo": item.photo,
        "status": item.status,
        "verified_at": item.verified_at,
        "instructions": instructions_for(item.platform),
    }
