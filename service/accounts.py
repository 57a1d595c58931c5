"""Owners: signing up, logging in, tokens for the API and sessions for the pages, what an owner
may do, leaving. Who may sign up at all is decided in service/signups.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete
from sqlmodel import Session, col, select

from service.addresses import NotAnAddress, normal_address
from service.audit import record
from service.db import remove_after_commit
from service.erasure import erase_mails, erase_rate_events, forget_deleted_rows
from service.security import hash_password, new_token, token_hash, verify_password
from service.states import TokenKind
from service.tables import (
    Circle,
    CircleMember,
    ExportUpload,
    LoginToken,
    Owner,
    Source,
    utcnow,
)

TOKEN_LIFETIME = {TokenKind.api: timedelta(days=30), TokenKind.session: timedelta(days=14)}


class AccountError(ValueError):
    """Something the person typed is not acceptable; the message says what."""


class NotAllowed(Exception):
    """The owner (or would-be owner) may not do this, at least not now; the message says why
    and what to do. Answered with 403."""


def normalise_email(email: str) -> str:
    """One address as stored (service/addresses.py: the API's schemas check with the same)."""
    try:
        return normal_address(email)
    except NotAnAddress as e:
        raise AccountError(str(e)) from None


def register(session: Session, email: str, password: str, name: str) -> Owner:
    """Create the account; the first one is the instance's admin. Whether this person may sign
    up at all is service/signups.py's to decide."""
    email = normalise_email(email)
    if len(password) < 10:
        raise AccountError("the password needs at least 10 characters")
    name = " ".join(name.split())[:200]  # one line: friends see it in mail headers
    if not name:
        raise AccountError("please enter your name")
    if session.exec(select(Owner).where(Owner.email == email)).first():
        raise AccountError("an account with this e-mail address exists already")
    # Two first accounts at once cannot both be admin: a unique index refuses the second row,
    # and that request fails and is rolled back (trying again signs up as the second owner).
    first = session.exec(select(Owner.id).limit(1)).first() is None
    owner = Owner(email=email, name=name, password_hash=hash_password(password), is_admin=first)
    session.add(owner)
    session.flush()
    assert owner.id is not None
    record(session, owner.id, "owner", "signed_up", admin=first)
    return owner


def may_invite(owner: Owner) -> None:
    """Raise NotAllowed unless the owner may invite anyone (friends or owners): their address
    is confirmed, and no friend's report has frozen them."""
    if owner.frozen_at is not None:
        raise NotAllowed(
            "your account is on hold: a friend reported one of your invitations, and the admin "
            "of this service will look into it. Until then you cannot invite anyone"
        )
    if owner.confirmed_at is None:
        raise NotAllowed(
            f"confirm your address first: we sent a link to {owner.email}. Nothing arrived? "
            "You can have it sent again from your dashboard"
        )


def authenticate(session: Session, email: str, password: str) -> Owner | None:
    try:
        email = normalise_email(email)
    except AccountError:
        return None
    owner = session.exec(select(Owner).where(Owner.email == email)).first()
    ok = verify_password(owner.password_hash if owner else None, password)
    return owner if owner and ok else None


def issue_token(session: Session, owner: Owner, kind: TokenKind) -> str:
    token = new_token()
    assert owner.id is not None
    session.add(
        LoginToken(
            owner_id=owner.id,
            token_hash=token_hash(token),
            kind=kind,
            expires_at=utcnow() + TOKEN_LIFETIME[kind],
        )
    )
    return token


def owner_for_token(session: Session, token: str, kind: TokenKind) -> Owner | None:
    row = session.exec(
        select(LoginToken).where(
            LoginToken.token_hash == token_hash(token), LoginToken.kind == kind
        )
    ).first()
    if row is None or row.expires_at <= utcnow():
        return None
    return session.get(Owner, row.owner_id)


def revoke_token(session: Session, token: str) -> None:
    session.execute(delete(LoginToken).where(col(LoginToken.token_hash) == token_hash(token)))


def delete_owner(session: Session, owner: Owner, outbox: Path | None = None) -> None:
    """Delete the owner and, by cascade, every row of theirs; their uploads, the mails about
    them in `outbox` and SQLite's log of the deleted rows go once this commits."""
    assert owner.id is not None
    uploads = [
        *session.exec(
            select(Source.upload_path).where(
                Source.owner_id == owner.id, col(Source.upload_path).is_not(None)
            )
        ),
        *session.exec(select(ExportUpload.path).where(ExportUpload.owner_id == owner.id)),
    ]
    erase_mails(session, outbox, owner_id=owner.id)
    erase_rate_events(session, owner.email, f"invite:{owner.id}")
    session.delete(owner)
    session.flush()
    # A family circle goes with its last member (their membership went with them).
    session.execute(
        delete(Circle).where(col(Circle.id).not_in(select(CircleMember.circle_id).distinct()))
    )
    remove_after_commit(session, [path for path in uploads if path])
    forget_deleted_rows(session)
