"""Mailing a friend their checklist: one list, one mail (a family circle's members fold into
one another's mail of it), a double click sends nothing twice, and reminders start from it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from service.audit import record
from service.checklist import ChecklistError, FriendList, helped_invitations, items_of, list_of
from service.config import Settings
from service.invites import keep_alive, report_url, token_of
from service.notify.mail import SecretLinks, compose, render
from service.posts import Post, open_count
from service.secrets_box import SecretBox
from service.states import FriendStatus, MailStatus
from service.tables import Friend, Match, OutgoingMail, Owner, utcnow

REPEAT_WINDOW = timedelta(minutes=10)  # the same list asked for again within this: a double click
FOLD_WINDOW = timedelta(hours=1)  # a family member's mail of the same list within this: one mail
CLAIM_ATTEMPTS = 2  # a send that loses the race to another decides once more on what it did


@dataclass(frozen=True)
class Sending:
    """What came of asking to send the checklist, for the owner to read."""

    mail: OutgoingMail | None  # to queue; None: nothing new was sent
    detail: str  # in words: "The checklist was sent 4 s ago, so it was not sent again."

    @property
    def sent(self) -> bool:
        return self.mail is not None


def link(settings: Settings, box: SecretBox, friend: Friend, page: str = "checklist") -> str:
    return f"{settings.base_url.rstrip('/')}/{page}/{token_of(box, friend)}"


def send(
    session: Session,
    settings: Settings,
    box: SecretBox,
    owner: Owner,
    friend: Friend,
    now: datetime | None = None,
) -> Sending:
    """Mail the friend their checklist and start the reminder schedule from now.

    The same list sent again within REPEAT_WINDOW (a double click) is not sent and leaves the
    reminders alone; `detail` says when it went. A list with a newly confirmed photo goes at once,
    and so does the same list once the window has passed (the owner asks deliberately).

    In a family circle the mail is about the friend's one list, every member's photos on it, and
    a member's sending folds into another member's mail of it (see _fold_into_family_mail).
    """
    now = now or utcnow()
    assert owner.id is not None
    for _attempt in range(CLAIM_ATTEMPTS):
        items = _sendable(session, friend)
        listed = list_of(session, friend)
        listing = _listing(listed.items)
        sent_before = _checklist_keys(session, friend)
        if _repeats(friend, sent_before, checklist_key(friend, listing, len(sent_before)), now):
            return _already_sent(friend, now)
        folded = _fold_into_family_mail(session, settings, box, friend, items, listed, now)
        if folded is not None:
            return folded
        key = checklist_key(friend, listing, len(sent_before) + 1)
        mail = mail_friend(
            session,
            settings,
            box,
            owner,
            friend,
            listed.items,
            kind="checklist",
            key=key,
            owner_name=listed.whose(),
        )
        if mail is None:  # the very same mail, written by a send running alongside
            session.refresh(friend)
        elif _claim(session, settings, friend, items, now):
            _watch(settings, items, now)
            record(
                session, owner.id, "owner", "checklist_sent", friend_id=friend.id, items=len(items)
            )
            return Sending(mail, f"The checklist is on its way to {friend.email}.")
        else:  # another send took the friend first: this mail must not go
            session.delete(mail)
            session.flush()
        # Decide again on what the other send did (usually: the same list, just now).
    return _already_sent(friend, now)


def checklist_key(friend: Friend, listing: str, number: int) -> str:
    """The checklist mail's key: the friend, the photos it lists, and which sending it is."""
    return f"checklist:{friend.id}:{listing}:{number}"


def _fold_into_family_mail(
    session: Session,
    settings: Settings,
    box: SecretBox,
    friend: Friend,
    items: list[Post],
    listed: FriendList,
    now: datetime,
) -> Sending | None:
    """A member's sending, folded into the mail of the friend's list that another member of
    their circle sent: one list, one mail. The very same list the friend has from that mail
    (waiting to go, or gone less than FOLD_WINDOW ago) is not mailed again; a mail still
    waiting, of a list that changed since, is written anew for the list as it is now. This
    member's reminders start either way. None: no such mail, so this sending mails the list."""
    found = _family_mail(session, friend, now)
    if found is None:
        return None
    mail, sender = found
    joined = _listed(mail.idempotency_key) == _listing(listed.items)
    if not joined and (
        mail.status != MailStatus.pending
        or _rewritten(session, settings, box, mail, sender, listed) is None
    ):
        return None  # gone or on its way, without what changed since: this sending tells it
    when = sender.checklist_sent_at or now
    if joined and friend.checklist_sent_at is not None and when <= friend.checklist_sent_at:
        return _already_sent(friend, now)  # joined before: a double click
    if not _claim(session, settings, friend, items, now):
        return _already_sent(friend, now)  # another send of this list took the friend first
    _watch(settings, items, now)
    record(
        session,
        friend.owner_id,
        "owner",
        "checklist_sent",
        friend_id=friend.id,
        items=len(items),
        mail_id=mail.id,
    )
    if joined:
        return Sending(
            None,
            f"The checklist with your photos on it was sent {ago(now - when)}, in one mail "
            "with the rest of their list, so it was not sent again.",
        )
    return Sending(mail, f"The checklist is on its way to {friend.email}, in one mail.")


def _family_mail(
    session: Session, friend: Friend, now: datetime
) -> tuple[OutgoingMail, Friend] | None:
    """The newest checklist mail of the friend's list that another member sent, newer than
    this member's own, when the friend has it or will: waiting to go, or gone less than
    FOLD_WINDOW ago. With the invitation it went through."""
    others = {
        f.id: f
        for f in helped_invitations(session, friend).values()
        if f.id != friend.id and f.checklist_sent_at is not None
    }
    mail = session.exec(
        select(OutgoingMail)
        .where(
            col(OutgoingMail.friend_id).in_(list(others)),
            OutgoingMail.kind == "checklist",
            col(OutgoingMail.id) > (last_checklist_id(session, friend) or 0),
            OutgoingMail.status != MailStatus.failed,
        )
        .order_by(col(OutgoingMail.id).desc())
    ).first()
    if mail is None or mail.friend_id is None:
        return None
    sender = others[mail.friend_id]
    recent = sender.checklist_sent_at is not None and now - sender.checklist_sent_at < FOLD_WINDOW
    return (mail, sender) if mail.status == MailStatus.pending or recent else None


def _listed(key: str) -> str:
    """The listing a checklist mail's key names (see checklist_key)."""
    return key.split(":")[2]


def _rewritten(
    session: Session,
    settings: Settings,
    box: SecretBox,
    mail: OutgoingMail,
    sender: Friend,
    listed: FriendList,
) -> OutgoingMail | None:
    """The checklist mail, still waiting to go, written anew for the list as it is now (and
    keyed by it); None once a worker has taken it to send."""
    owner = session.get_one(Owner, sender.owner_id)
    context, links = _letter(settings, box, owner, sender, listed.items, owner_name=listed.whose())
    session.add(sender)
    placeholders = {name: links.placeholder(name) for name in links.urls}
    number = int(mail.idempotency_key.rsplit(":", 1)[1])
    rewritten = session.execute(
        update(OutgoingMail)
        .where(col(OutgoingMail.id) == mail.id, col(OutgoingMail.status) == MailStatus.pending)
        .values(
            idempotency_key=checklist_key(sender, _listing(listed.items), number),
            **render("checklist", {**context, **placeholders})._asdict(),
            headers=unsubscribe_headers(links),
            sealed_links=links.sealed(),
        )
        .execution_options(synchronize_session=False)
    )
    if rewritten.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(mail)
    return mail


def last_checklist_id(session: Session, friend: Friend) -> int | None:
    """The checklist mail the current reminders belong to (the latest one sent)."""
    return session.exec(
        select(OutgoingMail.id)
        .where(OutgoingMail.friend_id == friend.id, OutgoingMail.kind == "checklist")
        .order_by(col(OutgoingMail.id).desc())
    ).first()


def ago(age: timedelta) -> str:
    """An age in words read at a glance: "just now", "4 s ago", "3 min ago", "2 h ago"."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 1:
        return "just now"
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _sendable(session: Session, friend: Friend) -> list[Post]:
    if friend.status != FriendStatus.accepted:
        raise ChecklistError("this friend has not accepted the invitation (or withdrew)")
    items = items_of(session, friend)
    if not items:
        raise ChecklistError("confirm at least one match before sending the checklist")
    if not open_count(items):
        raise ChecklistError("every photo on this list has an answer already")
    return items


def _listing(items: list[Post]) -> str:
    """Which photos a checklist lists, in 16 characters: the same photos, the same listing (a
    photo newly confirmed in a post already listed is a new listing)."""
    ids = ",".join(str(m) for m in sorted(m.id or 0 for item in items for m in item.matches))
    return hashlib.sha256(ids.encode()).hexdigest()[:16]


def _checklist_keys(session: Session, friend: Friend) -> list[str]:
    """The keys of the checklist mails this friend was sent, oldest first."""
    return list(
        session.exec(
            select(OutgoingMail.idempotency_key)
            .where(OutgoingMail.friend_id == friend.id, OutgoingMail.kind == "checklist")
            .order_by(col(OutgoingMail.id))
        ).all()
    )


def _repeats(friend: Friend, sent_before: list[str], same_list_key: str, now: datetime) -> bool:
    """The last checklist listed these very photos, and went less than REPEAT_WINDOW ago."""
    last = friend.checklist_sent_at
    recent = last is not None and now - last < REPEAT_WINDOW
    return recent and bool(sent_before) and sent_before[-1] == same_list_key


def _already_sent(friend: Friend, now: datetime) -> Sending:
    when = ago(now - friend.checklist_sent_at) if friend.checklist_sent_at else "just now"
    return Sending(None, f"The checklist was sent {when}, so it was not sent again.")


def _claim(
    session: Session, settings: Settings, friend: Friend, items: list[Post], now: datetime
) -> bool:
    """Take the friend row for this sending and restart the reminders. The UPDATE matches only
    while `checklist_sent_at` is what this send read, so of two sends at once one wins; the
    other matches no row (PostgreSQL re-reads the row once the winner commits; SQLite waits
    for its write lock) and is told the checklist was just sent."""
    offsets = settings.reminder_offsets
    reminding = bool(offsets) and open_count(items) > 0 and friend.unsubscribed_at is None
    claimed = session.execute(
        update(Friend)
        .where(
            col(Friend.id) == friend.id,
            col(Friend.checklist_sent_at) == friend.checklist_sent_at,  # None: IS NULL
        )
        .values(
            checklist_sent_at=now,
            reminders_sent=0,
            next_reminder_at=now + offsets[0] if reminding else None,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(friend)
    return claimed.rowcount == 1  # type: ignore[attr-defined]


def _watch(settings: Settings, items: list[Post], now: datetime) -> None:
    """Public photos on the list start being re-checked (service/verify.py), each by itself."""
    for match in (match for item in items for match in item.matches):
        if match.next_check_at is None and _public_url(match):
            match.next_check_at = now + settings.verify_interval


def mail_friend(
    session: Session,
    settings: Settings,
    box: SecretBox,
    owner: Owner,
    friend: Friend,
    items: list[Post],
    *,
    kind: str,
    key: str,
    **extra: object,
) -> OutgoingMail | None:
    """A mail about the friend's list (the checklist, a reminder), with one-click unsubscribe.
    It carries the friend's link, so the link lives on from now (invites.keep_alive)."""
    assert owner.id is not None
    context, links = _letter(settings, box, owner, friend, items, **extra)
    session.add(friend)
    return compose(
        session,
        kind=kind,
        key=key,
        to=friend.email,
        owner_id=owner.id,
        friend_id=friend.id,
        context=context,
        links=links,
        headers=unsubscribe_headers(links),
    )


def _letter(
    settings: Settings,
    box: SecretBox,
    owner: Owner,
    friend: Friend,
    items: list[Post],
    **extra: object,
) -> tuple[dict[str, object], SecretLinks]:
    """What a mail about the friend's list says, and the links it carries."""
    keep_alive(settings, friend)
    links = SecretLinks(
        box,
        checklist_url=link(settings, box, friend),
        unsubscribe_url=link(settings, box, friend, "unsubscribe"),
        report_url=report_url(settings, token_of(box, friend)),
    )
    context = {
        "owner_name": owner.name,
        "friend_name": friend.name,
        "count": len(items),
        "open": open_count(items),
        **extra,
    }
    return context, links


def unsubscribe_headers(links: SecretLinks) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe: mail clients POST to the URL without opening a page."""
    return {
        "List-Unsubscribe": f"<{links.placeholder('unsubscribe_url')}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _public_url(item: Match) -> str | None:
    for url in (item.post_url, item.photo):
        if url and url.startswith(("http://", "https://")):
            return url
    return None
