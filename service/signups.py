"""Who may open an owner account (PHOTO_REMOVAL_SIGNUPS), owner invitations, and confirming an
owner's address by a link mailed to it.

The first account is the instance's admin. After it, `open` lets anyone sign up, `invite` only
someone holding an owner invitation from a confirmed owner, `closed` no one. Every token here is
256 random bits, stored as its SHA-256 only, single use and expiring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from email.utils import formataddr

from sqlalchemy import delete, update
from sqlmodel import Session, col, select
from starlette.requests import Request

from service.accounts import AccountError, NotAllowed, may_invite, normalise_email, register
from service.audit import record
from service.config import Settings
from service.notify.mail import SecretLinks, compose
from service.secrets_box import box_for
from service.security import new_token, token_hash
from service.tables import ConfirmationToken, OutgoingMail, Owner, OwnerInvitation, utcnow

CONFIRMATION_VALID = timedelta(days=7)


@dataclass
class SignedUp:
    owner: Owner
    mail: OutgoingMail | None  # the confirmation mail; None when the invitation confirmed


def sign_up(
    session: Session,
    settings: Settings,
    email: str,
    password: str,
    name: str,
    invitation: str | None = None,
) -> SignedUp:
    """Open an account if the policy lets this person in (NotAllowed says why not).

    An owner invitation is mailed to one address, so signing up with it under that address
    proves the address: it is confirmed at once. Otherwise a confirmation link is mailed."""
    held = invitation_for(session, invitation) if invitation else None
    try:
        address = normalise_email(email)
    except AccountError:
        address = ""
    first = session.exec(select(Owner.id).limit(1)).first() is None
    if not first:
        _admit(settings, address, held, invitation)
    owner = register(session, email, password, name)  # AccountError before it writes
    if held is not None and held.email == owner.email and _use(session, held):
        owner.confirmed_at = utcnow()
        session.add(owner)
        assert owner.id is not None
        record(session, owner.id, "owner", "address_confirmed", by="owner_invitation")
        return SignedUp(owner, None)
    return SignedUp(owner, send_confirmation(session, settings, owner))


def _admit(
    settings: Settings, address: str, held: OwnerInvitation | None, invitation: str | None
) -> None:
    if settings.signups == "closed":
        raise NotAllowed("this service takes no new accounts")
    if settings.signups == "open":
        return
    if held is None:
        raise NotAllowed(
            "this invitation link is unknown, used or expired: please ask for a new one"
            if invitation
            else "accounts here are by invitation: ask someone who uses this service to "
            "invite you, and sign up with the link they send"
        )
    if held.email != address:
        raise NotAllowed(f"this invitation is for {held.email}: please sign up with that address")


def invitation_for(session: Session, token: str) -> OwnerInvitation | None:
    """The unused, unexpired owner invitation of this token, or None."""
    row = session.exec(
        select(OwnerInvitation).where(OwnerInvitation.token_hash == token_hash(token))
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def _use(session: Session, invitation: OwnerInvitation) -> bool:
    """Take the invitation; of two sign-ups with it at once, one does."""
    taken = session.execute(
        update(OwnerInvitation)
        .where(col(OwnerInvitation.id) == invitation.id, col(OwnerInvitation.used_at).is_(None))
        .values(used_at=utcnow())
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise NotAllowed("this invitation link was used a moment ago")
    return True


def invite_owner(
    session: Session, settings: Settings, inviter: Owner, email: str
) -> OutgoingMail | None:
    """Mail a sign-up link to `email`; a new one replaces any this owner sent there before."""
    may_invite(inviter)
    if settings.signups == "closed":
        raise NotAllowed("this service takes no new accounts, so there is no one to invite")
    email = normalise_email(email)
    if session.exec(select(Owner.id).where(Owner.email == email)).first() is not None:
        raise AccountError("there is an account with this address already")
    assert inviter.id is not None
    session.execute(
        delete(OwnerInvitation).where(
            col(OwnerInvitation.inviter_id) == inviter.id,
            col(OwnerInvitation.email) == email,
            col(OwnerInvitation.used_at).is_(None),
        )
    )
    token = new_token()
    row = OwnerInvitation(
        inviter_id=inviter.id,
        email=email,
        token_hash=token_hash(token),
        expires_at=utcnow() + timedelta(days=settings.invite_valid_days),
    )
    session.add(row)
    session.flush()
    record(session, inviter.id, "owner", "owner_invited", invitation_id=row.id)
    return compose(
        session,
        kind="owner_invitation",
        key=f"owner-invitation:{row.token_hash}",  # ids come back after a delete; hashes don't
        to=email,
        owner_id=inviter.id,
        friend_id=None,
        context={
            "inviter_name": inviter.name,
            "inviter_email": inviter.email,
            "expires_on": row.expires_at.strftime("%-d %B %Y"),
        },
        links=SecretLinks(
            box_for(settings.secret_key),
            signup_url=f"{_base(settings)}/signup?invitation={token}",
        ),
        headers={"Reply-To": reply_to(inviter)},
    )


def registration_key(request: Request) -> str:
    """The rate-limit key of sign-ups from the request's address (as the proxy policy sees it):
    one address cannot open accounts by the hundred."""
    return f"register:{request.client.host if request.client else '?'}"


def reply_to(owner: Owner) -> str:
    """The owner's name and address for a Reply-To header."""
    return formataddr((" ".join(owner.name.split()), owner.email))


def send_confirmation(session: Session, settings: Settings, owner: Owner) -> OutgoingMail | None:
    """Mail a link that confirms the owner's address; it replaces any sent before."""
    assert owner.id is not None
    session.execute(delete(ConfirmationToken).where(col(ConfirmationToken.owner_id) == owner.id))
    token = new_token()
    row = ConfirmationToken(
        owner_id=owner.id,
        email=owner.email,
        token_hash=token_hash(token),
        expires_at=utcnow() + CONFIRMATION_VALID,
    )
    session.add(row)
    session.flush()
    return compose(
        session,
        kind="confirm_address",
        key=f"confirm:{row.token_hash}",  # each link once (ids come back after a delete)
        to=owner.email,
        owner_id=owner.id,
        friend_id=None,
        context={"owner_name": owner.name, "valid_days": CONFIRMATION_VALID.days},
        links=SecretLinks(
            box_for(settings.secret_key), confirm_url=f"{_base(settings)}/confirm/{token}"
        ),
    )


def confirm(session: Session, token: str) -> Owner | None:
    """Confirm the address the token was sent to; None when it is unknown, used or expired."""
    row = session.exec(
        select(ConfirmationToken).where(ConfirmationToken.token_hash == token_hash(token))
    ).first()
    if row is None or row.expires_at <= utcnow():
        return None
    owner = session.get(Owner, row.owner_id)
    if owner is None or owner.email != row.email:
        return None
    session.execute(delete(ConfirmationToken).where(col(ConfirmationToken.owner_id) == owner.id))
    if owner.confirmed_at is None:
        owner.confirmed_at = utcnow()
        session.add(owner)
        assert owner.id is not None
        record(session, owner.id, "owner", "address_confirmed", by="link")
    return owner


def _base(settings: Settings) -> str:
    return settings.base_url.rstrip("/")
