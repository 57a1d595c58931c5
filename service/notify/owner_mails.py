"""What the owner hears, by mail, as things happen: a friend accepted or declined, a scan has
photos to review. Each is one mail per event (its key names the event, never the clock), and
the owner may mute any kind on their account page; the digest of answers is one of them."""

from __future__ import annotations

from sqlmodel import Session

from service.notify.mail import compose
from service.tables import Friend, OutgoingMail, Owner

# Each kind the owner may mute, and how the account page names it.
NOTICES = {
    "friend_answered": "when a friend accepts or declines your invitation",
    "scan_done": "when a friend's photos have matches for you to review",
    "digest": "a digest of your friends' answers on their lists",
}


def hears(owner: Owner, notice: str) -> bool:
    return notice not in (owner.muted or [])


def friend_answered(
    session: Session, base_url: str, friend: Friend, accepted: bool, number: int
) -> OutgoingMail | None:
    """`number`: which answer of this friend this is (an answer changed is a new mail)."""
    owner = session.get(Owner, friend.owner_id)
    if owner is None or owner.id is None or not hears(owner, "friend_answered"):
        return None
    return compose(
        session,
        kind="friend_accepted" if accepted else "friend_declined",
        key=f"friend-answered:{friend.id}:{number}",
        to=owner.email,
        owner_id=owner.id,
        friend_id=None,  # the owner's mail: it stays when the friend withdraws
        context={
            "owner_name": owner.name,
            "friend_name": friend.name,
            "friend_url": f"{base_url.rstrip('/')}/friends/{friend.id}",
            "withdrawn": friend.status == "withdrawn",
        },
    )


def scan_done(
    session: Session, base_url: str, owner_id: int, friend: Friend, scan_id: int, found: int
) -> OutgoingMail | None:
    """The owner's photos found in one scan of a friend's, waiting for review."""
    owner = session.get(Owner, owner_id)
    if owner is None or not found or not hears(owner, "scan_done"):
        return None
    return compose(
        session,
        kind="scan_done",
        key=f"scan-done:{scan_id}:{owner_id}",
        to=owner.email,
        owner_id=owner_id,
        friend_id=None,
        context={
            "owner_name": owner.name,
            "friend_name": friend.name,
            "found": found,
            "review_url": f"{base_url.rstrip('/')}/friends/{friend.id}",
        },
    )
