"""A friend who asked a platform for their download is mailed their link when it should be
ready: 2 days after asking, and once more 2 days later, unless they shared something meanwhile,
withdrew, or asked for no more reminders.

One series per person: in a family circle the friend holds several invitations, and the series
lives on the one they asked through. The schedule is a column (`friend.export_reminder_at`),
claimed before each mail is written, as for the checklist's reminders (notify/reminders.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from service.checklist_mail import link, unsubscribe_headers
from service.config import Settings
from service.db import unit_of_work
from service.invites import askers, keep_alive, report_url, siblings, token_of
from service.notify.mail import SecretLinks, compose
from service.notify.reminders import RETRY_AFTER
from service.secrets_box import SecretBox
from service.states import FriendStatus
from service.tables import ExportUpload, Friend, Owner, Source, utcnow
from service.uploads import shared_by

log = logging.getLogger(__name__)
REMIND_AFTER = timedelta(days=2)
REMINDERS = 2


def ask(session: Session, friend: Friend) -> datetime:
    """The friend asked a platform for their download: when their link comes back by mail.

    Asking again while a series runs (a double click, or the page opened through another
    member's link) changes nothing; after the series, or once they shared something, it starts
    a new one."""
    due = next_reminder(session, friend)
    if due is not None:
        return due
    now = utcnow()
    friend.export_asked_at, friend.export_reminders_sent = now, 0
    friend.export_reminder_at = now + REMIND_AFTER
    session.add(friend)
    return friend.export_reminder_at


def next_reminder(session: Session, friend: Friend) -> datetime | None:
    """When the friend's link is mailed to them next, while a series runs on any of their
    invitations: since the asking, neither a new consent (a withdrawal and a return) nor
    anything shared."""
    for each in siblings(session, friend):
        due, asked, consented = each.export_reminder_at, each.export_asked_at, each.consented_at
        if (
            due is not None
            and asked
            and consented
            and consented <= asked
            and not _shared_since(session, each, asked)
        ):
            return due
    return None


def _shared_since(session: Session, friend: Friend, since: datetime) -> bool:
    """An upload or a profile link through any of the friend's invitations since `since`, or
    an upload on its way (a resumable one sent to since)."""
    mine = shared_by(session, friend)
    found = session.exec(
        select(Source.id).where(col(Source.friend_id).in_(mine), Source.created_at >= since)
    )
    arriving = session.exec(
        select(ExportUpload.id).where(
            col(ExportUpload.friend_id).in_(mine), ExportUpload.touched_at >= since
        )
    )
    return found.first() is not None or arriving.first() is not None


def send_due_export_reminders(
    db: Engine, settings: Settings, box: SecretBox, now: datetime
) -> list[int]:
    """Compose the reminders due at `now`, each friend in a transaction of their own; returns
    the mail ids to send. One that fails is logged and tried again after `RETRY_AFTER`."""
    with Session(db) as session:
        due = session.exec(select(Friend.id).where(col(Friend.export_reminder_at) <= now)).all()
    mails = []
    for friend_id in due:
        try:
            with unit_of_work(db) as session:
                mail_id = _remind(session, settings, box, friend_id, now)
        except Exception:
            log.exception("export reminder for friend %s failed; trying again later", friend_id)
            _postpone(db, friend_id, now + RETRY_AFTER)
            continue
        if mail_id is not None:
            mails.append(mail_id)
    return mails


def _postpone(db: Engine, friend_id: int | None, until: datetime) -> None:
    try:
        with unit_of_work(db) as session:
            session.execute(
                update(Friend)
                .where(col(Friend.id) == friend_id, col(Friend.export_reminder_at).is_not(None))
                .values(export_reminder_at=until)
            )
    except Exception:
        log.exception("export reminder for friend %s could not be postponed", friend_id)


def _remind(
    session: Session, settings: Settings, box: SecretBox, friend_id: int | None, now: datetime
) -> int | None:
    friend = session.get(Friend, friend_id)
    if friend is None or friend.export_reminder_at is None or friend.export_reminder_at > now:
        return None
    asked = friend.export_asked_at
    assert asked is not None  # set whenever a reminder is (ask)
    stop = _done_waiting(session, friend, asked, now)
    number = friend.export_reminders_sent + 1
    following = None if stop or number >= REMINDERS else now + REMIND_AFTER
    moved = session.execute(
        update(Friend)
        .where(
            col(Friend.id) == friend.id,
            col(Friend.export_reminders_sent) == friend.export_reminders_sent,
            col(Friend.export_asked_at) == asked,  # asked again meanwhile: a new series
        )
        .values(
            export_reminders_sent=friend.export_reminders_sent + (0 if stop else 1),
            export_reminder_at=following,
        )
    )
    if stop or moved.rowcount != 1:  # type: ignore[attr-defined]
        return None  # nothing to remind of, or another worker took this one
    return _mail(session, settings, box, friend, asked, number, last=following is None)


def _done_waiting(session: Session, friend: Friend, asked: datetime, now: datetime) -> bool:
    """No mail for a friend who shared something since asking, withdrew (or withdrew and came
    back), asked for no more reminders, or whose link ended; nor while their owner is frozen."""
    owner = session.get(Owner, friend.owner_id)
    return (
        friend.status != FriendStatus.accepted
        or friend.consented_at is None
        or friend.consented_at > asked
        or friend.unsubscribed_at is not None
        or friend.expires_at <= now
        or owner is None
        or owner.frozen_at is not None
        or _shared_since(session, friend, asked)
    )


def _mail(
    session: Session,
    settings: Settings,
    box: SecretBox,
    friend: Friend,
    asked: datetime,
    number: int,
    *,
    last: bool,
) -> int | None:
    """The mail with the friend's share page; it carries the link, so the link lives on."""
    keep_alive(settings, friend)
    session.add(friend)
    helped = [
        a.owner.name for a in askers(session, friend) if a.friend.status == FriendStatus.accepted
    ]
    links = SecretLinks(
        box,
        share_url=link(settings, box, friend, "invite") + "/share",
        unsubscribe_url=link(settings, box, friend, "unsubscribe"),
        report_url=report_url(settings, token_of(box, friend)),
    )
    mail = compose(
        session,
        kind="export_reminder",
        # The friend, the asking it answers, and its number: never the clock of its sending.
        key=f"export-reminder:{friend.id}:{asked:%Y%m%dT%H%M%S%f}:{number}",
        to=friend.email,
        owner_id=friend.owner_id,
        friend_id=friend.id,
        context={
            "friend_name": friend.name,
            "owner_name": " and ".join(helped) or session.get_one(Owner, friend.owner_id).name,
            "expires_on": friend.expires_at.strftime("%-d %B %Y"),
            "last": last,
        },
        links=links,
        headers=unsubscribe_headers(links),
    )
    return mail.id if mail else None
