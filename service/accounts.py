"""Owners: signing up, logging in, tokens for the API and sessions for the pages, leaving."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete
from sqlmodel import Session, col, select

from service.audit import record
from service.db import remove_after_commit
from service.erasure import erase_mails, erase_rate_events, forget_deleted_rows
from service.security import hash_password, new_token, token_hash, verify_password
from service.states import TokenKind
from service.tables import LoginToken, Owner, Source, utcnow

TOKEN_LIFETIME = {TokenKind.api: timedelta(days=30), TokenKind.session: timedelta(days=14)}


class AccountError(ValueError):
    """Something the person typed is not acceptable; the message says what."""


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 320:
        raise AccountError("please enter a valid e-mail address")
    return email


def register(session: Session, email: str, password: str, name: str) -> Owner:
    email = normalise_email(email)
    if len(password) < 10:
        raise AccountError("the password needs at least 10 characters")
    if not name.strip():
        raise AccountError("please enter your name")
    if session.exec(select(Owner).where(Owner.email == email)).first():
        raise AccountError("an account with this e-mail address exists already")
    owner = Owner(email=email, name=name.strip()[:200], password_hash=hash_password(password))
    session.add(owner)
    session.flush()
    assert owner.id is not None
    record(session, owner.id, "owner", "signed_up")
    return owner


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
    uploads = session.exec(
        select(Source.upload_path).where(
            Source.owner_id == owner.id, col(Source.upload_path).is_not(None)
        )
    ).all()
    erase_mails(session, outbox, owner_id=owner.id)
    erase_rate_events(session, owner.email, f"invite:{owner.id}")
    session.delete(owner)
    session.flush()
    remove_after_commit(session, [path for path in uploads if path])
    forget_deleted_rows(session)
