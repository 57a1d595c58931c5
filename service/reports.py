"""A friend reports an invitation ("I don't know this person", "this is not their face"): the
link dies, everything the friend shared is deleted, the owner is frozen until the instance's
admin clears them, and the admin is mailed. On a page where several members of a family circle
ask, the friend reports one of them: only that member's invitation dies, the others' stay."""

from __future__ import annotations

import logging

from sqlmodel import Session, col, select

from service.audit import record
from service.config import Settings
from service.invites import InviteError, erase_friend, purge, sibling_for
from service.notify.mail import compose
from service.states import FriendStatus
from service.tables import Friend, OutgoingMail, Owner, Report, utcnow

log = logging.getLogger(__name__)
MAX_REASON = 1000


def reported(session: Session, friend: Friend, owner_id: int | None) -> Friend:
    """The invitation the friend reports from the page their link opens: that of `owner_id`,
    one of those asking there (None: the link's own). InviteError for anyone else, so no link
    reaches an owner who does not ask its holder."""
    if owner_id is None:
        return friend
    asker = sibling_for(session, friend, owner_id)
    if asker is None:
        raise InviteError("report one of those who ask you on this page")
    return asker


def report(
    session: Session, settings: Settings, friend: Friend, reason: str
) -> OutgoingMail | None:
    """Record the report and freeze the owner; returns the mail to the admin (None when the
    instance has no admin any more: the report still waits on the admin page)."""
    owner = session.get(Owner, friend.owner_id)
    assert owner is not None and owner.id is not None and friend.id is not None
    now = utcnow()
    friend.status, friend.consented_at, friend.next_reminder_at = FriendStatus.reported, None, None
    session.add(friend)
    purge(session, friend)
    erase_friend(session, friend, settings.outbox_dir)
    owner.frozen_at = owner.frozen_at or now
    session.add(owner)
    row = Report(
        owner_id=owner.id,
        friend_name=friend.name,
        friend_email=friend.email,
        reason=" ".join(reason.split())[:MAX_REASON] or "no reason given",
        created_at=now,
    )
    session.add(row)
    session.flush()
    record(session, owner.id, f"friend:{friend.id}", "reported", report_id=row.id)
    admin = session.exec(select(Owner).where(col(Owner.is_admin))).first()
    if admin is None or admin.id is None:
        log.warning("report %s: this instance has no admin to mail", row.id)
        return None
    return compose(
        session,
        kind="report",
        key=f"report:{friend.token_hash}",  # an invitation is reported once; ids come back
        to=admin.email,
        owner_id=admin.id,  # the admin's mail: it stays should the reported owner be deleted
        friend_id=None,
        context={
            "admin_name": admin.name,
            "owner_name": owner.name,
            "owner_email": owner.email,
            "friend_name": friend.name,
            "friend_email": friend.email,
            "reason": row.reason,
            "admin_url": f"{settings.base_url.rstrip('/')}/admin",
        },
    )
