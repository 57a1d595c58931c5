"""The friend's removal checklist: confirmed matches, one item per post, and the answers.
Mailing it (the checklist, folded into one mail for a family circle) is checklist_mail.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from service.audit import record
from service.instructions import instructions_for
from service.invites import siblings
from service.posts import Post, open_count, photo_of, posts
from service.review_cards import Frame, Picture
from service.states import ANSWERS, Answer, FriendStatus, Review
from service.tables import Friend, Match, Owner, utcnow

DIGEST_DELAY = timedelta(minutes=10)  # answers arriving together make one mail to the owner


class ChecklistError(ValueError):
    """The checklist cannot be sent or answered as asked; the message says why."""


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


def helped_invitations(session: Session, friend: Friend) -> dict[int, Friend]:
    """The friend's invitations whose confirmed photos are on their list, by id."""
    helped = [f for f in siblings(session, friend) if f.status == FriendStatus.accepted]
    return {f.id: f for f in helped or [friend] if f.id is not None}


def list_of(session: Session, friend: Friend) -> FriendList:
    """The friend's list, as they see it through any member's link (never an owner's view:
    an owner sees only their own photos and the answers about them)."""
    helped = helped_invitations(session, friend)
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
    return match if match.friend_id in helped_invitations(session, friend) else None


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
        for f in helped_invitations(session, friend).values()
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
