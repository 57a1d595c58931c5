"""Reminders to friends with open items, and news of their answers to owners, when they fall due.

The schedule lives in columns (`friend.next_reminder_at`, `owner.digest_due_at`), so a restart
loses nothing. Each due row is claimed with a conditional UPDATE that moves its schedule on before
the mail is written, so two workers never both send; each row has its own transaction, and a row
that fails is logged and tried again after `RETRY_AFTER`, never stopping the others.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from service.audit import record
from service.checklist import items_of, leads_reminders, list_of, open_count
from service.checklist_mail import last_checklist_id, mail_friend
from service.config import Settings
from service.db import unit_of_work
from service.notify import owner_mails
from service.posts import posts
from service.secrets_box import SecretBox
from service.states import Answer, FriendStatus
from service.tables import AuditEvent, Friend, Match, OutgoingMail, Owner

log = logging.getLogger(__name__)
RETRY_AFTER = timedelta(minutes=15)
ANSWERS_EVERY = timedelta(days=1)  # "X answered N photos": at most once a day for each friend
DIGEST_EVERY = timedelta(days=7)  # the digest of every answer: at most once a week
TOLD = ("list_answered", "list_finished")  # the audit lines of what the owner was told


def _each(
    db: Engine,
    kind: str,
    due: Sequence[int | None],
    work: Callable[[Session, int | None], list[int]],
    postpone: Callable[[Session, int | None], None],
) -> list[int]:
    """`work` on each due row in a transaction of its own; returns the mail ids to send."""
    mails = []
    for row_id in due:
        try:
            with unit_of_work(db) as session:
                mail_ids = work(session, row_id)
        except Exception:
            log.exception("%s %s failed; trying again in %s", kind, row_id, RETRY_AFTER)
            try:
                with unit_of_work(db) as session:
                    postpone(session, row_id)
            except Exception:
                log.exception("%s %s could not be postponed", kind, row_id)
            continue
        mails += mail_ids
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
) -> list[int]:
    friend = session.get(Friend, friend_id)
    if friend is None or friend.next_reminder_at is None or friend.next_reminder_at > now:
        return []
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
        return []  # nothing to remind of, or another worker took this one
    if not leads:
        return []  # a family circle's other member reminds of the same list
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
    return [mail.id] if mail and mail.id is not None else []


def send_due_digests(db: Engine, settings: Settings, now: datetime) -> list[int]:
    """What owners hear of their friends' answers, once `owner.digest_due_at` comes (an answer
    sets it a little later, so answers given together make one mail): for each friend, "X
    answered N photos" at most once a day, "X finished their list" at once; and the digest of
    every answer at most once a week. What must wait sets the next `digest_due_at`."""
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
        "answers for owner",
        due,
        lambda session, owner_id: _tell_answers(session, settings.base_url, owner_id, now),
        postpone,
    )


Told = tuple[OutgoingMail | None, datetime | None]  # the mail, and when to look again


def _tell_answers(
    session: Session, base_url: str, owner_id: int | None, now: datetime
) -> list[int]:
    owner = session.get(Owner, owner_id)
    if owner is None or owner.digest_due_at is None or owner.digest_due_at > now:
        return []
    claimed = session.execute(
        update(Owner)
        .where(col(Owner.id) == owner.id, col(Owner.digest_due_at) == owner.digest_due_at)
        .values(digest_due_at=None)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return []  # another worker took it
    told = [
        _tell_friend(session, base_url, owner, friend, answers, last, now)
        for friend, answers, last in _untold(session, owner)
    ]
    told.append(_digest(session, base_url, owner, now))
    following = min((when for _, when in told if when is not None), default=None)
    session.execute(update(Owner).where(col(Owner.id) == owner.id).values(digest_due_at=following))
    return [mail.id for mail, _ in told if mail is not None and mail.id is not None]


def _untold(
    session: Session, owner: Owner
) -> list[tuple[Friend, list[AuditEvent], AuditEvent | None]]:
    """Each friend with answers the owner has not heard of: those answers, and the last time
    the owner heard of that friend's list (an audit line, `list_answered` or `list_finished`)."""
    events = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.owner_id == owner.id, col(AuditEvent.action).in_(("item_answered", *TOLD))
        )
        .order_by(col(AuditEvent.id))
    ).all()
    untold: dict[str, list[AuditEvent]] = {}
    last: dict[str, AuditEvent] = {}
    for event in events:
        if event.action in TOLD:
            untold.pop(event.actor, None)
            last[event.actor] = event
        else:
            untold.setdefault(event.actor, []).append(event)
    friends = session.exec(select(Friend).where(Friend.owner_id == owner.id)).all()
    by_actor = {f"friend:{friend.id}": friend for friend in friends}
    return [
        (by_actor[actor], answers, last.get(actor))
        for actor, answers in untold.items()
        if actor in by_actor  # a friend since removed: nothing left to tell
    ]


def _tell_friend(
    session: Session,
    base_url: str,
    owner: Owner,
    friend: Friend,
    answers: list[AuditEvent],
    last: AuditEvent | None,
    now: datetime,
) -> Told:
    """A finished list is told at once; answers on a list still open, a day after the last."""
    assert owner.id is not None and answers[-1].id is not None
    items = items_of(session, friend)
    still_open = open_count(items)
    if still_open and last is not None and now < last.at + ANSWERS_EVERY:
        return None, last.at + ANSWERS_EVERY
    actor, newest = f"friend:{friend.id}", answers[-1].id
    if items and not still_open:
        counts = Counter(str(item.status) for item in items)
        record(session, owner.id, actor, "list_finished", friend_id=friend.id, **counts)
        return owner_mails.list_finished(session, base_url, owner, friend, counts, newest), None
    touched = {i for event in answers for i in event.detail.get("match_ids", [])}
    answered = [i for i in items if i.status != Answer.open and any(i.has(m) for m in touched)]
    if not answered:
        return None, None  # answered, then opened again (the photo came back)
    record(session, owner.id, actor, "list_answered", friend_id=friend.id, items=len(answered))
    mail = owner_mails.list_answered(session, base_url, owner, friend, answered, still_open, newest)
    return mail, None


def _digest(session: Session, base_url: str, owner: Owner, now: datetime) -> Told:
    """The answers since the last digest, once a week has passed since it (or, for the first,
    since the first of them)."""
    since = owner.last_digest_at
    query = select(Match, Friend).where(
        Match.owner_id == owner.id,
        col(Match.answered_at).is_not(None),
        Match.friend_id == Friend.id,
    )
    if since is not None:
        query = query.where(col(Match.answered_at) > since)
    rows = session.exec(query.order_by(col(Friend.name), col(Match.answered_at))).all()
    if not rows:
        return None, None
    start = since or min(match.answered_at for match, _ in rows if match.answered_at)
    if now < start + DIGEST_EVERY:
        return None, start + DIGEST_EVERY
    session.execute(update(Owner).where(col(Owner.id) == owner.id).values(last_digest_at=now))
    by_friend: dict[int, tuple[Friend, list[Match]]] = {}
    for match, friend in rows:
        by_friend.setdefault(friend.id or 0, (friend, []))[1].append(match)
    answered = [(friend, posts(matches)) for friend, matches in by_friend.values()]
    # The newest answer it covers: the same answers are never a second digest.
    newest = session.exec(
        select(func.max(AuditEvent.id)).where(
            AuditEvent.owner_id == owner.id, AuditEvent.action == "item_answered"
        )
    ).one()
    return owner_mails.digest(session, base_url, owner, answered, newest or 0), None
