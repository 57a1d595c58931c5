"""Family circles: owners who ask the same friends together.

An owner is in one circle at most. Any member may invite an owner by mail; the invited owner joins
by opening the link while logged in with the address it was sent to, once their address is
confirmed. The keeper (the longest-standing member) may remove members; everyone may leave; the
circle goes with its last member. What members share is told to the friends they ask together
(one invitation, one scan, one checklist), never each other's photos.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from service.accounts import AccountError, NotAllowed, may_invite, normalise_email
from service.audit import record
from service.config import Settings
from service.notify.mail import SecretLinks, compose
from service.secrets_box import box_for
from service.security import count_attempt, new_token, token_hash
from service.signups import reply_to
from service.states import Review
from service.tables import (
    Circle,
    CircleInvitation,
    CircleMember,
    Friend,
    Match,
    OutgoingMail,
    Owner,
    utcnow,
)

MAX_NAME = 100


class CircleError(ValueError):
    """What was asked conflicts with the circles as they are (a 409); the message says why."""


def circle_of(session: Session, owner: Owner) -> Circle | None:
    """The owner's circle, if they are in one."""
    member = session.exec(select(CircleMember).where(CircleMember.owner_id == owner.id)).first()
    return session.get(Circle, member.circle_id) if member is not None else None


def membership(session: Session, owner: Owner, circle_id: int) -> Circle | None:
    """The circle, when the owner is one of its members; None otherwise (not found *or not
    theirs*: whether a circle exists is nobody else's business)."""
    circle = circle_of(session, owner)
    return circle if circle is not None and circle.id == circle_id else None


def members(session: Session, circle: Circle) -> list[Owner]:
    """The members, the keeper first (the longest-standing member)."""
    rows = session.exec(
        select(Owner)
        .join(CircleMember, col(CircleMember.owner_id) == col(Owner.id))
        .where(CircleMember.circle_id == circle.id)
        .order_by(col(CircleMember.joined_at), col(CircleMember.id))
    ).all()
    return list(rows)


def create(session: Session, owner: Owner, name: str) -> Circle:
    """A new circle with the owner as its first member (and keeper)."""
    may_invite(owner)  # a circle is for asking friends: confirmed owners, not on hold
    name = " ".join(name.split())[:MAX_NAME]
    if not name:
        raise AccountError("please give the circle a name, e.g. “The Garcías”")
    _not_in_a_circle(session, owner)
    circle = Circle(name=name)
    session.add(circle)
    session.flush()
    assert circle.id is not None and owner.id is not None
    session.add(CircleMember(circle_id=circle.id, owner_id=owner.id))
    record(session, owner.id, "owner", "circle_created", circle_id=circle.id)
    return circle


def invite(
    session: Session, settings: Settings, owner: Owner, circle: Circle, email: str
) -> OutgoingMail | None:
    """Mail `email` a link to join; it replaces a link this circle sent there before."""
    may_invite(owner)
    email = normalise_email(email)
    if any(member.email == email for member in members(session, circle)):
        raise CircleError(f"{email} is in “{circle.name}” already")
    assert circle.id is not None and owner.id is not None
    session.execute(
        delete(CircleInvitation).where(
            col(CircleInvitation.circle_id) == circle.id, col(CircleInvitation.email) == email
        )
    )
    token = new_token()
    row = CircleInvitation(
        circle_id=circle.id,
        inviter_id=owner.id,
        email=email,
        token_hash=token_hash(token),
        expires_at=utcnow() + timedelta(days=settings.invite_valid_days),
    )
    session.add(row)
    session.flush()
    record(session, owner.id, "owner", "circle_invited", circle_id=circle.id)
    return compose(
        session,
        kind="circle_invitation",
        key=f"circle-invitation:{row.token_hash}",  # each link once (ids come back)
        to=email,
        owner_id=owner.id,
        friend_id=None,
        context={
            "inviter_name": owner.name,
            "inviter_email": owner.email,
            "circle_name": circle.name,
            "email": email,
            "expires_on": row.expires_at.strftime("%-d %B %Y"),
        },
        links=SecretLinks(
            box_for(settings.secret_key),
            join_url=f"{settings.base_url.rstrip('/')}/circles/join/{token}",
        ),
        headers={"Reply-To": reply_to(owner)},
    )


def count_invitation(db: Engine, settings: Settings, owner: Owner) -> None:
    """Count one circle invitation mailed against `invitations_per_hour`; RateLimited past it."""
    per_hour = settings.invitations_per_hour
    count_attempt(db, f"circle-invite:{owner.id}", limit=per_hour, per=timedelta(hours=1))


def invitation(session: Session, owner: Owner, token: str) -> CircleInvitation | None:
    """The live invitation behind `token` for this owner: sent to their address, not expired.
    None otherwise, as for an unknown link: a link forwarded to someone else opens nothing."""
    row = session.exec(
        select(CircleInvitation).where(CircleInvitation.token_hash == token_hash(token))
    ).first()
    if row is None or row.expires_at <= utcnow() or row.email != owner.email:
        return None
    return row


def join(session: Session, owner: Owner, row: CircleInvitation) -> Circle:
    """Join the circle of the invitation (used up by it); NotAllowed before the owner's address
    is confirmed, CircleError while they are in another circle."""
    if owner.confirmed_at is None:
        raise NotAllowed(f"confirm your address first: we sent a link to {owner.email}")
    circle = session.get(Circle, row.circle_id)
    assert circle is not None and owner.id is not None
    if circle_of(session, owner) is None:
        session.add(CircleMember(circle_id=row.circle_id, owner_id=owner.id))
        for member in members(session, circle):
            assert member.id is not None
            record(session, member.id, f"owner:{owner.id}", "circle_joined", circle_id=circle.id)
    elif membership(session, owner, row.circle_id) is None:
        _not_in_a_circle(session, owner)
    session.delete(row)
    session.flush()
    return circle


def keeper(session: Session, circle: Circle) -> Owner:
    return members(session, circle)[0]


def remove(session: Session, owner: Owner, circle: Circle, member_id: int) -> None:
    """`owner` leaves (member_id is their own) or, as the keeper, removes a member. The circle
    goes with its last member. NotAllowed for anyone else; LookupError for a non-member."""
    everyone = members(session, circle)
    if member_id not in {m.id for m in everyone}:
        raise LookupError("no such member")
    if member_id != owner.id and everyone[0].id != owner.id:
        raise NotAllowed("only the circle's keeper may remove its members; you may leave it")
    session.execute(delete(CircleMember).where(col(CircleMember.owner_id) == member_id))
    action = "circle_left" if member_id == owner.id else "circle_removed"
    for member in everyone:
        assert member.id is not None
        record(session, member.id, f"owner:{owner.id}", action, member_id=member_id)
    if len(everyone) == 1:
        session.delete(circle)
    session.flush()


def _not_in_a_circle(session: Session, owner: Owner) -> None:
    circle = circle_of(session, owner)
    if circle is not None:
        raise CircleError(f"you are in the circle “{circle.name}” already: leave it first")


def tell_of_same_face(session: Session, match: Match) -> None:
    """Two members of a circle who both confirm the same face of a friend's photo (possible when
    it was found for each in scans before they joined) are both told, once, by mail: a face is
    one person's, and they settle it between them."""
    if not match.photo_digest:
        return
    friend = session.get(Friend, match.friend_id)
    owner = session.get(Owner, match.owner_id)
    if friend is None or owner is None:
        return
    circle = circle_of(session, owner)
    others = session.exec(
        select(Match).where(
            Match.photo_digest == match.photo_digest,
            Match.box_key == match.box_key,
            Match.owner_id != match.owner_id,
            Match.review == Review.confirmed,
        )
    ).all()
    for other in others:
        other_owner = session.get(Owner, other.owner_id)
        other_friend = session.get(Friend, other.friend_id)
        if other_owner is None or other_friend is None or other_friend.email != friend.email:
            continue
        theirs = circle_of(session, other_owner)
        if circle is None or theirs is None or theirs.id != circle.id:
            continue  # another family's: nothing of theirs is told
        pair = f"{min(match.id or 0, other.id or 0)}:{max(match.id or 0, other.id or 0)}"
        for me, them, mine in ((owner, other_owner, match), (other_owner, owner, other)):
            assert me.id is not None
            record(session, me.id, "system", "same_face_confirmed", match_id=mine.id)
            compose(
                session,
                kind="same_face",
                key=f"same-face:{pair}:{me.id}",
                to=me.email,
                owner_id=me.id,
                friend_id=None,
                context={
                    "owner_name": me.name,
                    "other_name": them.name,
                    "friend_name": friend.name,
                    "photo": mine.photo,
                },
            )
