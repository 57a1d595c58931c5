"""Invitations and consent: the friend's token is their only key, to their own things only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from service.accounts import AccountError, may_invite, normalise_email
from service.audit import record
from service.config import Settings
from service.db import remove_after_commit
from service.notify.mail import compose
from service.secrets_box import SecretBox
from service.security import new_token, token_hash
from service.signups import reply_to
from service.states import Answer, FriendStatus, Review
from service.tables import Friend, Match, OutgoingMail, Owner, Scan, Source, utcnow

# Bump when the consent text in web/templates/invite.html changes: consent is to a version.
CONSENT_VERSION = "2026-12-06"  # check the face and the address; ask the person; report


class InviteError(ValueError):
    """The invitation cannot be made; the message says why."""


class SharingPaused(Exception):
    """The owner is frozen (a friend reported them): nothing new is accepted or scanned."""

    def __init__(self) -> None:
        super().__init__(
            "sharing is paused: the admin of this service is looking into a report about the "
            "person who invited you, and nothing new is scanned until then"
        )


def invite(
    session: Session, settings: Settings, box: SecretBox, owner: Owner, name: str, email: str
) -> tuple[Friend, str, OutgoingMail | None]:
    """Create the friend and their invitation mail; returns the raw token (shown once).

    Only a confirmed owner who is not frozen may invite (accounts.NotAllowed otherwise). The
    mail names the owner with their confirmed address and replies go to it, so the friend can
    ask the real person before accepting."""
    may_invite(owner)
    if not name.strip():
        raise InviteError("please enter your friend's name")
    try:
        email = normalise_email(email)
    except AccountError as e:
        raise InviteError(str(e)) from None
    assert owner.id is not None
    token = new_token()
    friend = Friend(
        owner_id=owner.id,
        name=name.strip()[:200],
        email=email,
        token_hash=token_hash(token),
        sealed_token=box.seal_bytes(token.encode()),
        expires_at=utcnow() + timedelta(days=settings.invite_valid_days),
    )
    session.add(friend)
    session.flush()
    mail = compose(
        session,
        kind="invitation",
        key=f"invitation:{friend.id}",
        to=email,
        owner_id=owner.id,
        friend_id=friend.id,
        context={
            "owner_name": owner.name,
            "owner_email": owner.email,
            "friend_name": friend.name,
            "invite_url": invite_url(settings, token),
            "report_url": report_url(settings, token),
            "expires_on": friend.expires_at.strftime("%-d %B %Y"),
        },
        headers={"Reply-To": reply_to(owner)},
    )
    record(session, owner.id, "owner", "friend_invited", friend_id=friend.id)
    return friend, token, mail


def invite_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/invite/{token}"


def report_url(settings: Settings, token: str) -> str:
    """Where a friend reports the invitation; every mail to a friend carries it."""
    return f"{invite_url(settings, token)}/report"


def token_of(box: SecretBox, friend: Friend) -> str:
    return box.open_bytes(friend.sealed_token).decode()


def friend_for_token(session: Session, token: str) -> Friend | None:
    """The friend holding this token, or None when it is unknown or expired.

    The expiry bounds the time to accept; an accepted invitation stays the friend's key to their
    checklist (and to withdrawing) for as long as the owner keeps their account.
    """
    friend = session.exec(select(Friend).where(Friend.token_hash == token_hash(token))).first()
    if friend is None or friend.status == FriendStatus.reported:
        return None  # a reported invitation is dead for good
    if friend.status != FriendStatus.accepted and friend.expires_at <= utcnow():
        return None
    return friend


def check_sharing(session: Session, friend: Friend) -> None:
    """Raise SharingPaused while the friend's owner is frozen."""
    owner = session.get(Owner, friend.owner_id)
    if owner is None or owner.frozen_at is not None:
        raise SharingPaused


def consent(session: Session, friend: Friend, accept: bool, whole_photos: bool = False) -> None:
    """Record the friend's answer; declining purges their data. Accepting an invitation of a
    frozen owner raises SharingPaused (declining and withdrawing always work). `whole_photos`:
    the owner may see the whole photos found, not only the region around their own face."""
    actor = f"friend:{friend.id}"
    if accept:
        check_sharing(session, friend)
        friend.status, friend.consented_at = FriendStatus.accepted, utcnow()
        friend.consent_version = CONSENT_VERSION
        friend.shows_whole_photos = whole_photos
        session.add(friend)
        record(
            session,
            friend.owner_id,
            actor,
            "consent_given",
            version=CONSENT_VERSION,
            whole_photos=whole_photos,
        )
        return
    was_accepted = friend.status == FriendStatus.accepted
    friend.status = FriendStatus.withdrawn if was_accepted else FriendStatus.declined
    friend.consented_at, friend.shows_whole_photos = None, False
    session.add(friend)
    record(session, friend.owner_id, actor, "consent_withdrawn" if was_accepted else "declined")
    purge(session, friend)


def purge(session: Session, friend: Friend) -> None:
    """Remove the friend's sources, scans and matches; their uploads go once this commits."""
    uploads = [
        p
        for p in session.exec(select(Source.upload_path).where(Source.friend_id == friend.id)).all()
        if p
    ]
    for table in (Match, Scan, Source):
        session.execute(delete(table).where(col(table.friend_id) == friend.id))
    remove_after_commit(session, uploads)


def friends_of(session: Session, owner: Owner) -> list[tuple[Friend, int, int, int]]:
    """Each friend with their matches, open items (confirmed, unanswered) and confirmed ones."""
    friends = session.exec(
        select(Friend).where(Friend.owner_id == owner.id).order_by(col(Friend.id))
    ).all()
    rows = session.exec(
        select(Match.friend_id, Match.review, Match.status, func.count())
        .where(Match.owner_id == owner.id)
        .group_by(col(Match.friend_id), col(Match.review), col(Match.status))
    ).all()
    counts: dict[int, list[int]] = {}
    for friend_id, review, status, n in rows:
        tally = counts.setdefault(friend_id, [0, 0, 0])
        tally[0] += n
        if review == Review.confirmed:
            tally[2] += n
            tally[1] += n if status == Answer.open else 0
    return [(f, *counts.get(f.id or 0, [0, 0, 0])) for f in friends]  # type: ignore[misc]


def friend_of(session: Session, owner: Owner, friend_id: int) -> Friend | None:
    friend = session.get(Friend, friend_id)
    return friend if friend is not None and friend.owner_id == owner.id else None
