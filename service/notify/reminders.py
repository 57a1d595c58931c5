"""Reminders to friends with open items, and digests of answers to owners, when they fall due.

The schedule lives in columns (`friend.next_reminder_at`, `owner.digest_due_at`), so a restart
loses nothing. Each due row is claimed with a conditional UPDATE that moves its schedule on before
the mail is written, so two workers never both send; each row has its own transaction, and a row
that fails is logged and tried again after `RETRY_AFTER`, never stopping the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from service.checklist import (
    items_of,
    last_checklist_id,
    leads_reminders,
    list_of,
    mail_friend,
    open_count,
)
from service.config import Settings
from service.db import unit_of_work
from service.notify import owner_mails
from service.notify.mail import compose
from service.secrets_box import SecretBox
from service.states import FriendStatus
from service.tables import AuditEvent, Friend, Match, Owner

log = logging.getLogger(__name__)
RETRY_AFTER = timedelta(minutes=15)


def _each(
    db: Engine,
    kind: str,
    due: Sequence[int | None],
    work: Callable[[Session, int | None], int | None],
    postpone: Callable[[Session, int | None], None],
) -> list[int]:
    """`work` on each due row in a transaction of its own; returns the mail ids to send."""
    mails = []
    for row_id in due:
        try:
            with unit_of_work(db) as session:
                mail_id = work(session, row_id)
        except Exception:
            log.exception("%s %s failed; trying again in %s", kind, row_id, RETRY_AFTER)
            try:
                with unit_of_work(db) as session:
                    postpone(session, row_id)
            except Exception:
                log.exception("%s %s could not be postponed", kind, row_id)
            continue
        if mail_id is not None:
            mails.append(mail_id)
    return mails


def send_due_reminders(db: Engine, settings: Settings, box: SecretBox, now: datetime) -> list[int]:
    """Compose the reminders due at `now`; returns the mail ids to send."""
    with Session(db) as session:
        due = session.exec(select(Friend.id).where(col(Friend.next_reminder_at) <= now)).all()

    def postpone(session: Session, friend_id: int | None) -> None:
        session.execute(
            update(Friend)
            .where(col(Friend.id) == friend_id, col(Friend.next_reminder_at).is_not(None))
            .values(next_reminder_at=now + RETRY_AFTER)
        )

    return _each(
        db,
        "reminder for friend",
        due,
        lambda session, friend_id: _remind(session, settings, box, friend_id, now),
        postpone,
    )


def _remind(
    session: Session, settings: Settings, box: SecretBox, friend_id: int | None, now: datetime
) -> int | None:
    friend = session.get(Friend, friend_id)
    if friend is None or friend.next_reminder_at is None or friend.next_reminder_at > now:
        return None
    items = items_of(session, friend)
    leads = leads_reminders(session, friend)  # asked before this one's schedule moves on
    stop = (
        friend.unsubscribed_at is not None
        or friend.status != FriendStatus.accepted
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
        .where(
            col(Friend.id) == friend.id,
            col(Friend.reminders_sent) == friend.reminders_sent,
            # A checklist sent again meanwhile has a schedule of its own.
            col(Friend.checklist_sent_at) == friend.checklist_sent_at,
        )
        .values(
            reminders_sent=friend.reminders_sent + (0 if stop else 1), next_reminder_at=following
        )
    )
    if stop or moved.rowcount != 1:  # type: ignore[attr-defined]
        return None  # nothing to remind of, or another worker took this one
    if not leads:
        return None  # a family circle's other member reminds of the same list
    owner = session.get(Owner, friend.owner_id)
    assert owner is not None and owner.id is not None
    # The friend, the checklist mail this reminder follows, and its number: never the clock.
    key = f"reminder:{friend.id}:{last_checklist_id(session, friend) or 0}:{number}"
    listed = list_of(session, friend)  # the friend's one list (a family circle's, merged)
    mail = mail_friend(
        session,
        settings,
        box,
        owner,
        friend,
        listed.items,
        kind="reminder",
        key=key,
        last=following is None,
        owner_name=" and ".join(listed.names.values()) or owner.name,
    )
    return mail.id if mail else None


def send_due_digests(db: Engine, now: datetime) -> list[int]:
    """One mail per owner gathering the answers that came in since the last digest."""
    with Session(db) as session:
        due = session.exec(select(Owner.id).where(col(Owner.digest_due_at) <= now)).all()

    def postpone(session: Session, owner_id: int | None) -> None:
        session.execute(
            update(Owner)
            .where(col(Owner.id) == owner_id, col(Owner.digest_due_at).is_not(None))
            .values(digest_due_at=now + RETRY_AFTER)
        )

    return _each(
        db,
        "digest for owner",
        due,
        lambda session, owner_id: _digest(session, owner_id, now),
        postpone,
    )


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
    # The owner and the newest answer it covers: the same answers are never a second digest.
    newest = session.exec(
        select(func.max(AuditEvent.id)).where(
            AuditEvent.owner_id == owner.id, AuditEvent.action == "item_answered"
        )
    ).one()
    key = f"digest:{owner.id}:{newest or 0}"
    claimed = session.execute(
        update(Owner)
        .where(col(Owner.id) == owner.id, col(Owner.digest_due_at) == owner.digest_due_at)
        .values(digest_due_at=None, last_digest_at=now)
    )
    if claimed.rowcount != 1 or not answers:  # type: ignore[attr-defined]
        return None  # another worker took it, or nothing new to tell
    if not owner_mails.hears(owner, "digest"):
        return None  # the owner chose not to get it (the answers stay on their pages)
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
