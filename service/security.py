"""Passwords, random tokens stored as hashes, CSRF tokens and rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, func
from sqlmodel import col, select

from service.db import unit_of_work
from service.tables import RateEvent, utcnow

_hasher = PasswordHasher()
# A hash to verify against when the e-mail is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("no such owner")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_csrf_token(key: str, session: str | None) -> str:
    """A form token bound to the log-in session it is made for (None: no one logged in), as
    `nonce.mac`. It is the cookie's value too (double submit); a cookie planted from a sibling
    domain still fails: without the secret key no one makes the mac for another's session."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_csrf_mac(key, nonce, session)}"


def csrf_bound(key: str, token: str, session: str | None) -> bool:
    """True when `token` was made by new_csrf_token for this very session."""
    nonce, _, mac = token.partition(".")
    return bool(nonce and mac) and hmac.compare_digest(
        _bytes(mac), _bytes(_csrf_mac(key, nonce, session))
    )


def csrf_matches(
    key: str, cookie_value: str | None, form_value: str | None, session: str | None
) -> bool:
    """The form's token equals the cookie, and both were made for this session."""
    if not (cookie_value and form_value):
        return False
    return hmac.compare_digest(_bytes(cookie_value), _bytes(form_value)) and csrf_bound(
        key, cookie_value, session
    )


def _csrf_mac(key: str, nonce: str, session: str | None) -> str:
    message = b"csrf\0" + _bytes(nonce) + b"\0" + _bytes(session or "")
    digest = hmac.new(_bytes(key), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _bytes(text: str) -> bytes:
    # compare_digest refuses str with non-ASCII characters (a TypeError, so a 500): compare bytes.
    return text.encode("utf-8", "replace")


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts; try again in {retry_after} seconds")
        self.retry_after = retry_after


def count_attempt(engine: Engine, key: str, *, limit: int, per: timedelta) -> None:
    """Record one attempt under `key`; raise RateLimited past `limit` within `per`.

    Kept in the database so every web process and machine shares the count, and committed in a
    transaction of its own so a failed log-in (whose request rolls back) still counts.
    """
    now = utcnow()
    with unit_of_work(engine) as session:
        session.execute(
            delete(RateEvent).where(col(RateEvent.key) == key, col(RateEvent.at) < now - per)
        )
        recent = session.exec(
            select(func.count()).select_from(RateEvent).where(col(RateEvent.key) == key)
        ).one()
        if recent >= limit:
            raise RateLimited(int(per.total_seconds()))
        session.add(RateEvent(key=key, at=now))
