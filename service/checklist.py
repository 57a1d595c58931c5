"""The friend's removal checklist: confirmed matches, one item per post, and the answers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from service.audit import record
from service.config import Settings
from service.instructions import instructions_for
from service.invites import keep_alive, report_url, siblings, token_of
from service.notify.mail import SecretLinks, compose, render
from service.posts import Post, open_count, photo_of, posts
from service.review_cards import Frame, Picture
from service.secrets_box import SecretBox
from service.states import ANSWERS, Answer, FriendStatus, MailStatus, Review
from service.tables import Friend, Match, OutgoingMail, Owner, utcnow

DIGEST_DELAY = timedelta(minutes=10)  # answers arriving together make one mail to the owner
REPEAT_WINDOW = timedelta(minutes=10)  # the same list asked for again within this: a double click
FOLD_WINDOW = timedelta(hours=1)  # a family member's mail of the same list within this: one mail
CLAIM_ATTEMPTS = 2  # a send that loses the race to another decides once more on what it did


class ChecklistError(ValueError):
    """The checklist cannot be sent or answered as asked; the message says why."""


@dataclass(frozen=True)
class Sending:
    """What came of asking to send the checklist, for the owner to read."""

    mail: OutgoingMail | None  # to queue; None: nothing new was sent
    detail: str  # in words: "The checklist was sent 4 s ago, so it was not sent again."

    @property
    def sent(self) -> bool:
        return self.mail is not None


def items_of(session: Session, friend: Friend) -> list[Post]:
    """Confirmed matches across all the friend's sources, one item per post, oldest first."""
    assert friend.id is not None
    return _posts_of(session, [friend.id])


def _posts_of(session: Session, friend_ids: list[int]) -> list[Post]:
    rows = session.exec(
        select(Match)
        .where(col(Match.friend_id).in_(friend_ids), Match.review == Review.confirmed)
        .order_by(col(Match.taken_at), col(Match.id))
    ).all()
    return posts(rows)


@dataclass(frozen=True)
class FriendList:
    """The one list a friend sees: in a family circle, the posts of every member they help, a
    photo showing two members one item; each item names whose photo it is."""

    items: list[Post]
    names: dict[int, str]  # owner id -> name, of everyone on the list

    def owner_names(self, item: Post) -> list[str]:
        return [self.names[i] for i in dict.fromkeys(m.owner_id for m in item.matches)]

    def whose(self) -> str:
        """Whose photos the list holds, in a mail: "Alice", or "Alice and Ben"."""
        on_list = {m.owner_id for item in self.items for m in item.matches}
        return " and ".join(name for i, name in self.names.items() if i in on_list)


def _helped(session: Session, friend: Friend) -> dict[int, Friend]:
    """The friend's invitations whose confirmed photos are on their list, by id."""
    helped = [f for f in siblings(session, friend) if f.status == FriendStatus.accepted]
    return {f.id: f for f in helped or [friend] if f.id is not None}


def list_of(session: Session, friend: Friend) -> FriendList:
    """The friend's list, as they see it through any member's link (never an owner's view:
    an owner sees only their own photos and the answers about them)."""
    helped = _helped(session, friend)
    owners = [session.get(Owner, f.owner_id) for f in helped.values()]  # in the circle's order
    names = {o.id: o.name for o in owners if o is not None and o.id is not None}
    return FriendList(_posts_of(session, list(helped)), names)


def item_on_list(session: Session, friend: Friend, item_id: int) -> Post | None:
    """The item of the friend's list with that id (or any of its photos' match ids)."""
    return next((item for item in list_of(session, friend).items if item.has(item_id)), None)


def match_on_list(session: Session, friend: Friend, match_id: int) -> Match | None:
    """One confirmed photo of the friend's list, whichever member it is for."""
    match = session.get(Match, match_id)
    if match is None or match.review != Review.confirmed:
        return None
    return match if match.friend_id in _helped(session, friend) else None


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
        for f in _helped(session, friend).values()
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


def answer(
    session: Session, friend: Friend, item: Post, status: str, now: datetime | None = None
) -> Post:
    """Record the friend's answer on every photo of that post; each owner whose photo it is
    hears in a digest (a photo of two members of a circle answers both)."""
    if status not in ANSWERS:
        raise ChecklistError(f"the answer must be one of {', '.join(ANSWERS)}")
    now = now or utcnow()
    for match in item.matches:
        match.status, match.answered_at = Answer(status), now
        session.add(match)
    for friend_id in dict.fromkeys(match.friend_id for match in item.matches):
        _answered(session, session.get_one(Friend, friend_id), item, status, now)
    return item


def _answered(session: Session, friend: Friend, item: Post, status: str, now: datetime) -> None:
    """What one owner's side keeps of an answer: the audit line, the digest, the reminders."""
    mine = [match.id for match in item.matches if match.friend_id == friend.id]
    record(
        session,
        friend.owner_id,
        f"friend:{friend.id}",
        "item_answered",
        match_id=mine[0],
        match_ids=mine,
        status=status,
    )
    owner = session.get(Owner, friend.owner_id)
    soon = now + DIGEST_DELAY  # the owner hears soon, though the digest may be due next week
    if owner is not None and (owner.digest_due_at is None or owner.digest_due_at > soon):
        owner.digest_due_at = soon
        session.add(owner)
    if not open_count(items_of(session, friend)):
        friend.next_reminder_at = None  # all answered: no more reminders
        session.add(friend)


def unsubscribe(session: Session, friend: Friend, now: datetime | None = None) -> None:
    """No more reminders, from anyone: in a family circle, one unsubscribe stops every
    member's (the friend has one series of reminders, for one list)."""
    for each in siblings(session, friend):
        each.unsubscribed_at = each.unsubscribed_at or now or utcnow()
        each.next_reminder_at = None
        session.add(each)
        record(session, each.owner_id, f"friend:{each.id}", "unsubscribed")


def leads_reminders(session: Session, friend: Friend) -> bool:
    """Whether this invitation's reminders are the ones that go out. In a family circle the
    friend has one series: that of the member whose list went first among those whose own
    photos still wait for an answer (when it ends, no other begins); the others' fall due
    silently, since the list they would link to is the same one."""
    waiting = [
        f
        for f in _helped(session, friend).values()
        if f.checklist_sent_at is not None
        and f.unsubscribed_at is None
        and open_count(items_of(session, f))
    ]
    if not waiting:
        return True
    lead = min(waiting, key=lambda f: (f.checklist_sent_at, f.id or 0))
    return lead.id == friend.id


def view(item: Post, owner_names: list[str], token: str) -> dict[str, object]:
    """What the friend sees of an item (never the distance or the encoding): the post, told by
    its first photo, and each of its photos."""
    first = item.first
    return {
        "id": item.id,
        "thumbnail_url": _thumbnail_url(token, first),
        "platform": first.platform,
        "post_url": next((m.post_url for m in item.matches if m.post_url), None),
        "taken_at": first.taken_at,
        "caption": next((m.caption for m in item.matches if m.caption), None),
        "album": first.album,
        "photo": first.photo,
        "status": item.status,
        "verified_at": item.verified_at,
        "instructions": instructions_for(first.platform),
        "photos": [
            {"match_id": m.id, "thumbnail_url": _thumbnail_url(token, m), "photo": m.photo}
            for m in item.photos
        ],
        "owner_names": owner_names,
    }


def _thumbnail_url(token: str, match: Match) -> str | None:
    if match.thumbnail is None:
        return None
    return f"/api/v1/invites/{token}/checklist/{match.id}/thumbnail"


def _scaled(match: Match) -> tuple[float, float, float, float]:
    """The face's box in the thumbnail's pixels."""
    top, right, bottom, left = (v * match.thumbnail_scale for v in match.box)
    return top, right, bottom, left


def frames(items: list[Post]) -> dict[int, list[Frame]]:
    """Each photo's thumbnail on the list, with every face in it that is on the list, to
    outline them (in a family circle, a photo of two members outlines both)."""
    found: dict[int, list[Frame]] = {}
    for item in items:
        for shown in item.photos:
            if shown.id is None or shown.thumbnail is None:
                continue
            same = [m for m in item.matches if photo_of(m) == photo_of(shown)]
            found[shown.id] = [Frame.of(Picture(shown.thumbnail, _scaled(m))) for m in same]
    return found
