"""Passwords, random tokens stored as hashes, CSRF tokens and rate limits."""

from __future__ import annotations

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


def csrf_matches(cookie_value: str | None, form_value: str | None) -> bool:
    return bool(cookie_value and form_value) and hmac.compare_digest(
        str(cookie_value), str(form_value)
    )


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
