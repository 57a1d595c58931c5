"""Invitations and consent: the friend's token is their only key, to their own things only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, func, update
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from service import resumable
from service.accounts import AccountError, may_invite, normalise_email
from service.audit import record
from service.config import Settings
from service.db import remove_after_commit
from service.erasure import erase_mails, forget_deleted_rows
from service.notify import owner_mails
from service.notify.mail import SecretLinks, compose
from service.posts import open_count, posts
from service.secrets_box import SecretBox
from service.security import count_attempt, new_token, token_hash
from service.signups import reply_to
from service.states import FriendStatus, Review
from service.tables import (
    AuditEvent,
    CircleMember,
    Friend,
    Match,
    OutgoingMail,
    Owner,
    Scan,
    Source,
    utcnow,
)

# Bump when the consent text in web/templates/invite.html changes: consent is to a version.
CONSENT_VERSION = "2026-12-06"  # check the face and the address; ask the person; report
RESEND_WINDOW = timedelta(seconds=60)  # an invitation sent again within this: a double click


class InviteError(ValueError):
    """The invitation cannot be made; the message says why."""


class AlreadyInvited(InviteError):
    """This owner invited that address before (a 409): send that invitation again instead."""


class DeadLink(LookupError):
    """A link that opens nothing any more; `reason` says why in words the friend understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Why a link is dead, as the friend reads it. A revoked or replaced link is simply unknown: its
# row is gone or holds a newer token, and both say the same to whoever holds it.
UNKNOWN = "this link is not valid any more: it was cancelled or replaced by a newer one"
REPORTED = "you reported this invitation, so its link was switched off and what you shared deleted"
EXPIRED = "this link has expired"


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

    Only a confirmed owner who is not frozen may invite (accounts.NotAllowed otherwise), and
    each address once (AlreadyInvited: resend that invitation instead). The mail names the
    owner with their confirmed address and replies go to it, so the friend can ask the real
    person before accepting."""
    may_invite(owner)
    if not name.strip():
        raise InviteError("please enter your friend's name")
    try:
        email = normalise_email(email)
    except AccountError as e:
        raise InviteError(str(e)) from None
    assert owner.id is not None
    known = session.exec(
        select(Friend).where(Friend.owner_id == owner.id, Friend.email == email)
    ).first()
    if known is not None:
        raise AlreadyInvited(
            f"you invited {email} already ({known.name}, {known.status}): send that invitation "
            "again, or cancel it first"
        )
    friend = Friend(
        owner_id=owner.id,
        name=name.strip()[:200],
        email=email,
        token_hash="",
        sealed_token=b"",
        expires_at=utcnow(),
    )
    token = _new_link(settings, box, friend)
    session.add(friend)
    session.flush()
    record(session, owner.id, "owner", "friend_invited", friend_id=friend.id)
    mail = _invitation_mail(session, settings, box, owner, friend, token, again=False)
    return friend, token, mail


def count_invitation(db: Engine, settings: Settings, owner: Owner) -> None:
    """Count one invitation mailed (a new one, or one sent again) against the owner's
    `invitations_per_hour`; RateLimited past it."""
    per_hour = settings.invitations_per_hour
    count_attempt(db, f"invite:{owner.id}", limit=per_hour, per=timedelta(hours=1))


def resend(
    session: Session, settings: Settings, box: SecretBox, owner: Owner, friend: Friend
) -> tuple[str, OutgoingMail | None]:
    """Mail the friend a new link; the old one stops working at once. An accepted friend keeps
    their place (their link just changes); a friend who declined, withdrew or reported is not
    asked again (InviteError: invite them anew only after cancelling this invitation).

    Asked again within RESEND_WINDOW of a sending the friend has not answered since, or while
    another request replaces the link, it is a double click: the link just mailed stays the
    friend's (its token is returned) and nothing is mailed, so no mail carries a dead link."""
    may_invite(owner)
    if friend.status not in (FriendStatus.invited, FriendStatus.accepted):
        raise InviteError(
            f"{friend.name} {friend.status} this invitation, so it is not sent again; "
            "ask them yourself first"
        )
    token = None if _just_resent(session, friend) else _replace_link(session, settings, box, friend)
    if token is None:
        return token_of(box, friend), None
    record(session, friend.owner_id, "owner", "invitation_resent", friend_id=friend.id)
    return token, _invitation_mail(session, settings, box, owner, friend, token, again=True)


def _just_resent(session: Session, friend: Friend) -> bool:
    """The link the friend holds was mailed again less than RESEND_WINDOW ago, and they have
    not answered since (an answer makes the next sending a deliberate one)."""
    recent = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.owner_id == friend.owner_id,
            AuditEvent.action == "invitation_resent",
            col(AuditEvent.at) > utcnow() - RESEND_WINDOW,
        )
        .order_by(col(AuditEvent.id).desc())
    ).all()
    last = next((e for e in recent if e.detail.get("friend_id") == friend.id), None)
    return last is not None and (friend.consented_at is None or friend.consented_at < last.at)


def _replace_link(
    session: Session, settings: Settings, box: SecretBox, friend: Friend
) -> str | None:
    """Give the friend a fresh link, unless another request replaced the one read meanwhile
    (None): of two sendings at once, one changes the link and the other finds it changed."""
    token = new_token()
    replaced = session.execute(
        update(Friend)
        .where(col(Friend.id) == friend.id, col(Friend.token_hash) == friend.token_hash)
        .values(_link(settings, box, friend, token))
        .execution_options(synchronize_session=False)
    )
    session.refresh(friend)
    return token if replaced.rowcount == 1 else None  # type: ignore[attr-defined]


def revoke(session: Session, friend: Friend, outbox: Path | None) -> None:
    """Cancel the invitation: its link dies at once, and everything the friend shared goes, with
    the mails to them. The owner may invite the address again afterwards."""
    record(session, friend.owner_id, "owner", "invitation_revoked", friend_id=friend.id)
    purge(session, friend)
    erase_friend(session, friend, outbox)
    session.delete(friend)
    session.flush()


def _new_link(settings: Settings, box: SecretBox, friend: Friend) -> str:
    token = new_token()
    friend.sqlmodel_update(_link(settings, box, friend, token))
    return token


def _link(settings: Settings, box: SecretBox, friend: Friend, token: str) -> dict[str, object]:
    """The friend's columns for a fresh token (the one before stops working) valid for the
    invitation's time, or, once accepted, for the time a link lives without use."""
    return {
        "token_hash": token_hash(token),
        "sealed_token": box.seal_bytes(token.encode()),
        "expires_at": utcnow() + _valid_for(settings, friend),
    }


def _valid_for(settings: Settings, friend: Friend) -> timedelta:
    if friend.status == FriendStatus.accepted:
        return timedelta(days=settings.link_idle_days)
    return timedelta(days=settings.invite_valid_days)


def _invitation_mail(
    session: Session,
    settings: Settings,
    box: SecretBox,
    owner: Owner,
    friend: Friend,
    token: str,
    *,
    again: bool,
) -> OutgoingMail | None:
    assert owner.id is not None and friend.id is not None
    return compose(
        session,
        kind="invitation",
        # One mail per link: the token's hash names it (never the token, never the clock).
        key=f"invitation:{friend.id}:{friend.token_hash[:16]}",
        to=friend.email,
        owner_id=owner.id,
        friend_id=friend.id,
        context={
            "owner_name": owner.name,
            "owner_email": owner.email,
            "friend_name": friend.name,
            # Relatives in the owner's family circle who asked this address before: the same
            # page lists them all, and the friend answers each.
            "also_asking": [
                asker.name
                for f in siblings(session, friend)
                if f.id != friend.id and (asker := session.get(Owner, f.owner_id)) is not None
            ],
            "again": again,
            "accepted": friend.status == FriendStatus.accepted,
            "expires_on": friend.expires_at.strftime("%-d %B %Y"),
        },
        links=SecretLinks(
            box, invite_url=invite_url(settings, token), report_url=report_url(settings, token)
        ),
        headers={"Reply-To": reply_to(owner)},
    )


def invite_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/invite/{token}"


def report_url(settings: Settings, token: str) -> str:
    """Where a friend reports the invitation; every mail to a friend carries it."""
    return f"{invite_url(settings, token)}/report"


def token_of(box: SecretBox, friend: Friend) -> str:
    return box.open_bytes(friend.sealed_token).decode()


def look_up(session: Session, settings: Settings, token: str) -> Friend:
    """The friend holding this token, or DeadLink saying why it opens nothing.

    Before acceptance a link lives `invite_valid_days` from its sending. Once accepted it lives
    `link_idle_days` from the friend's last visit or the last mail that carried it (a checklist,
    a reminder), so a list in progress never locks its friend out and a forgotten one ends.
    """
    friend = session.exec(select(Friend).where(Friend.token_hash == token_hash(token))).first()
    if friend is None:
        raise DeadLink(UNKNOWN)
    if friend.status == FriendStatus.reported:
        raise DeadLink(REPORTED)
    now = utcnow()
    if friend.expires_at <= now:
        raise DeadLink(f"{EXPIRED} (on {friend.expires_at.strftime('%-d %B %Y')})")
    if friend.status == FriendStatus.accepted:
        keep_alive(settings, friend, now)
        session.add(friend)
    return friend


def keep_alive(settings: Settings, friend: Friend, now: datetime | None = None) -> None:
    """Push an accepted link's expiry to `link_idle_days` from now; written at most once a day,
    so reading a page does not mean writing a row every time."""
    now = now or utcnow()
    renewed = now + timedelta(days=settings.link_idle_days)
    if friend.status == FriendStatus.accepted and renewed - friend.expires_at > timedelta(days=1):
        friend.expires_at = renewed


def siblings(session: Session, friend: Friend) -> list[Friend]:
    """The invitations one person holds from the members of one family circle: the friend's own
    and those of the other members to the same address (a reported one is dead, so not among
    them), in the order the members joined. Without a circle: the friend's own alone.

    Each member's link opens the same page; the friend answers each member."""
    member = session.exec(
        select(CircleMember).where(CircleMember.owner_id == friend.owner_id)
    ).first()
    if member is None:
        return [friend]
    rows = session.exec(
        select(Friend)
        .join(CircleMember, col(CircleMember.owner_id) == col(Friend.owner_id))
        .where(
            CircleMember.circle_id == member.circle_id,
            Friend.email == friend.email,
            Friend.status != FriendStatus.reported,
        )
        .order_by(col(CircleMember.joined_at), col(CircleMember.id))
    ).all()
    return list(rows) or [friend]


@dataclass(frozen=True)
class Asker:
    """One member asking the friend: their invitation and who they are."""

    friend: Friend
    owner: Owner


def askers(session: Session, friend: Friend) -> list[Asker]:
    """Who asks the holder of this link, the link's owner and their circle's members alike."""
    found = [(f, session.get(Owner, f.owner_id)) for f in siblings(session, friend)]
    return [Asker(f, owner) for f, owner in found if owner is not None]


def consent_each(
    session: Session,
    settings: Settings,
    friend: Friend,
    owner_ids: list[int] | None,
    accept: bool,
    whole_photos: bool = False,
) -> Answered:
    """The friend's answer to each member in `owner_ids` (None: the owner of the link alone).
    InviteError names an owner who does not ask them."""
    chosen: list[Friend | None] = [friend]
    if owner_ids is not None:
        asking = {f.owner_id: f for f in siblings(session, friend)}
        chosen = [asking.get(owner_id) for owner_id in dict.fromkeys(owner_ids)]
    answered = [f for f in chosen if f is not None]
    if not answered or len(answered) < len(chosen):
        raise InviteError("tick whom you answer, among those who ask you on this page")
    mails = [consent(session, settings, each, accept, whole_photos) for each in answered]
    return Answered(answered, [mail for mail in mails if mail is not None])


@dataclass(frozen=True)
class Answered:
    """The invitations a friend answered, and the mails telling their owners (to send once the
    answer commits)."""

    friends: list[Friend]
    mails: list[OutgoingMail]


def sibling_for(session: Session, friend: Friend, owner_id: int) -> Friend | None:
    """The invitation of `owner_id` among the friend's siblings, if that member asks them."""
    return next((f for f in siblings(session, friend) if f.owner_id == owner_id), None)


def check_sharing(session: Session, friend: Friend) -> None:
    """Raise SharingPaused while the friend's owner is frozen."""
    owner = session.get(Owner, friend.owner_id)
    if owner is None or owner.frozen_at is not None:
        raise SharingPaused


def consent(
    session: Session,
    settings: Settings,
    friend: Friend,
    accept: bool,
    whole_photos: bool = False,
) -> OutgoingMail | None:
    """Record the friend's answer and return the owner's mail about it (unless they muted it).
    Accepting an invitation of a frozen owner raises SharingPaused (declining and withdrawing
    always work). `whole_photos`: the owner may see the whole photos found, not only the region
    around their own face.

    Declining or withdrawing deletes what the friend shared and the mails to them; the
    invitation page stays open to them, to accept after all, while the invitation is valid."""
    actor = f"friend:{friend.id}"
    if accept:
        check_sharing(session, friend)
        friend.status, friend.consented_at = FriendStatus.accepted, utcnow()
        friend.consent_version = CONSENT_VERSION
        friend.shows_whole_photos = whole_photos
        keep_alive(settings, friend)
        session.add(friend)
        record(
            session,
            friend.owner_id,
            actor,
            "consent_given",
            version=CONSENT_VERSION,
            whole_photos=whole_photos,
        )
        return _tell_owner(session, settings, friend, accepted=True)
    was_accepted = friend.status == FriendStatus.accepted
    friend.status = FriendStatus.withdrawn if was_accepted else FriendStatus.declined
    friend.consented_at, friend.shows_whole_photos = None, False
    friend.next_reminder_at = None
    friend.expires_at = min(friend.expires_at, utcnow() + _valid_for(settings, friend))
    session.add(friend)
    record(session, friend.owner_id, actor, "consent_withdrawn" if was_accepted else "declined")
    purge(session, friend)
    erase_friend(session, friend, settings.outbox_dir)
    return _tell_owner(session, settings, friend, accepted=False)


ANSWERS = ("consent_given", "consent_withdrawn", "declined")


def _tell_owner(
    session: Session, settings: Settings, friend: Friend, *, accepted: bool
) -> OutgoingMail | None:
    """The owner's mail about this answer: the n-th answer of the friend is the n-th mail."""
    answers = session.exec(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.owner_id == friend.owner_id,
            AuditEvent.actor == f"friend:{friend.id}",
            col(AuditEvent.action).in_(ANSWERS),
        )
    ).one()
    return owner_mails.friend_answered(session, settings.base_url, friend, accepted, answers)


def erase_friend(session: Session, friend: Friend, outbox: Path | None) -> None:
    """The mails to the friend (rows and outbox copies) and the log of deleted rows go too."""
    assert friend.id is not None
    erase_mails(session, outbox, friend_id=friend.id)
    forget_deleted_rows(session)


def purge(session: Session, friend: Friend) -> None:
    """Remove what the friend shared with this owner: their matches, and the sources and scans
    shared through this invitation, their uploads once this commits.

    In a family circle one upload serves every member the friend helps: a scan still serving
    another of them (a member the friend helps now, or one who left the circle with matches
    from it) passes to that member's invitation with its source, and only this owner's matches
    go."""
    session.execute(delete(Match).where(col(Match.friend_id) == friend.id))
    helped = [
        f
        for f in siblings(session, friend)
        if f.id != friend.id and f.status == FriendStatus.accepted
    ]
    uploads = []
    scans = session.exec(select(Scan).where(Scan.friend_id == friend.id)).all()
    for scan in scans:
        heir = next(iter(helped), None) or _holder_of_matches(session, scan)
        source = session.get(Source, scan.source_id)
        if heir is not None:
            for row in (scan, source):
                if row is not None:
                    row.friend_id, row.owner_id = heir.id or 0, heir.owner_id
                    session.add(row)
            continue
        if source is not None and source.upload_path:
            uploads.append(source.upload_path)
        session.delete(scan)
        if source is not None:
            session.delete(source)
    session.flush()
    remove_after_commit(session, uploads)
    resumable.discard_of(session, [friend.id or 0])  # what was still arriving goes too


def _holder_of_matches(session: Session, scan: Scan) -> Friend | None:
    """An accepted invitation, other than the scan's, with matches found by this scan."""
    return session.exec(
        select(Friend)
        .join(Match, col(Match.friend_id) == col(Friend.id))
        .where(
            Match.scan_id == scan.id,
            Friend.id != scan.friend_id,
            Friend.status == FriendStatus.accepted,
        )
    ).first()


def friends_of(session: Session, owner: Owner) -> list[tuple[Friend, int, int, int]]:
    """Each friend with their matches, open items and items on their checklist (posts of
    confirmed matches: the photos of one post are one item)."""
    friends = session.exec(
        select(Friend).where(Friend.owner_id == owner.id).order_by(col(Friend.id))
    ).all()
    matches: dict[int, int] = dict(
        session.exec(
            select(Match.friend_id, func.count())
            .where(Match.owner_id == owner.id)
            .group_by(col(Match.friend_id))
        ).all()
    )
    confirmed: dict[int, list[Match]] = {}
    for match in session.exec(
        select(Match)
        .where(Match.owner_id == owner.id, Match.review == Review.confirmed)
        .order_by(col(Match.id))
        .options(
            defer(Match.thumbnail),  # type: ignore[arg-type]
            defer(Match.owner_view),  # type: ignore[arg-type]
            defer(Match.sealed_encoding),  # type: ignore[arg-type]
        )
    ).all():
        confirmed.setdefault(match.friend_id, []).append(match)
    tallies = []
    for friend in friends:
        items = posts(confirmed.get(friend.id or 0, []))
        tallies.append((friend, matches.get(friend.id or 0, 0), open_count(items), len(items)))
    return tallies


def friend_of(session: Session, owner: Owner, friend_id: int) -> Friend | None:
    friend = session.get(Friend, friend_id)
    return friend if friend is not None and friend.owner_id == owner.id else None
