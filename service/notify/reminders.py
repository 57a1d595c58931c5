"""Reminders to friends with open items, and digests of answers to owners, when they fall due.

The schedule lives in columns (`friend.next_reminder_at`, `owner.digest_due_at`), so a restart
loses nothing; each row is advanced with an optimistic lock, so two workers never both send.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from service.checklist import items_of, mail_friend, open_count
from service.config import Settings
from service.db import unit_of_work
from service.notify.mail import compose
from service.secrets_box import SecretBox
from service.tables import Friend, Match, Owner


def send_due_reminders(db: Engine, settings: Settings, box: SecretBox, now: datetime) -> list[int]:
    """Compose the reminders due at `now`; returns the mail ids to send."""
    with Session(db) as session:
        due = session.exec(select(Friend.id).where(col(Friend.next_reminder_at) <= now)).all()
    mails = []
    for friend_id in due:
        with unit_of_work(db) as session:
            mail_id = _remind(session, settings, box, friend_id, now)
        if mail_id is not None:
            mails.append(mail_id)
    return mails


def _remind(
    session: Session, settings: Settings, box: SecretBox, friend_id: int | None, now: datetime
) -> int | None:
    friend = session.get(Friend, friend_id)
    if friend is None or friend.next_reminder_at is None or friend.next_reminder_at > now:
        return None
    items = items_of(session, friend)
    stop = (
        friend.unsubscribed_at is not None
        or friend.status != "accepted"
        or not open_count(items)
        or friend.checklist_sent_at is None
    )
    number = friend.reminders_sent + 1
    offsets = settings.reminder_offsets
    following = (
        friend.checklist_sent_at + offsets[number]
        if not stop and friend.checklist_sent_at and number < len(offsets)
        else None
    )
    moved = session.execute(
        update(Friend)
        .where(col(Friend.id) == friend.id, col(Friend.reminders_sent) == friend.reminders_sent)
        .values(
            reminders_sent=friend.reminders_sent + (0 if stop else 1), next_reminder_at=following
        )
    )
    if stop or moved.rowcount != 1:  # type: ignore[attr-defined]
        return None  # nothing to remind of, or another worker took this one
    owner = session.get(Owner, friend.owner_id)
    assert owner is not None and owner.id is not None
    key = f"reminder:{friend.id}:{friend.checklist_sent_at}:{number}"
    mail = mail_friend(
        session,
        settings,
        box,
        owner,
        friend,
        items,
        kind="reminder",
        key=key,
        last=following is None,
    )
    return mail.id if mail else None


def send_due_digests(db: Engine, now: datetime) -> list[int]:
    """One mail per owner gathering the answers that came in since the last digest."""
    with Session(db) as session:
        due = session.exec(select(Owner.id).where(col(Owner.digest_due_at) <= now)).all()
    mails = []
    for owner_id in due:
        with unit_of_work(db) as session:
            mail_id = _digest(session, owner_id, now)
        if mail_id is not None:
            mails.append(mail_id)
    return mails


def _digest(session: Session, owner_id: int | None, now: datetime) -> int | None:
    owner = session.get(Owner, owner_id)
    if owner is None or owner.digest_due_at is None or owner.digest_due_at > now:
        return None
    since = owner.last_digest_at
    rows = session.exec(
        select(Match, Friend)
        .where(
            Match.owner_id == owner.id,
            col(Match.answered_at).is_not(None),
            Match.friend_id == Friend.id,
        )
        .order_by(col(Friend.name), col(Match.answered_at))
    ).all()
    answers = [
        (friend.name, match.photo, match.status)
        for match, friend in rows
        if since is None or (match.answered_at and match.answered_at > since)
    ]
    key = f"digest:{owner.id}:{owner.digest_due_at.isoformat()}"
    owner.digest_due_at, owner.last_digest_at = None, now
    session.add(owner)
    if not answers:
        return None
    assert owner.id is not None
    mail = compose(
        session,
        kind="digest",
        key=key,
        to=owner.email,
        owner_id=owner.id,
        friend_id=None,
        context={"owner_name": owner.name, "answers": answers},
    )
    return mail.id if mail else None
