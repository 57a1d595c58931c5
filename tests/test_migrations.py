"""The migrations build exactly the schema the tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

import service.tables  # noqa: F401  (registers the tables)
from service.config import Settings
from service.db import make_engine, migrate, upgrade
from service.tables import Friend, OutgoingMail, utcnow
from tests.conftest import DATABASES, make_settings


@pytest.fixture(params=DATABASES)
def settings(request, tmp_path: Path) -> Settings:  # type: ignore[no-untyped-def]
    """A database as a new install finds it: empty, no schema (conftest's is migrated)."""
    return make_settings(tmp_path, database=request.param, migrated=False)


def test_it_migrates_to_the_schema_of_the_tables(settings: Settings) -> None:
    engine = make_engine(settings.prepared().sqlalchemy_url)
    migrate(engine)
    migrate(engine)  # a second run is a no-op
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


def test_it_lets_two_processes_start_on_a_fresh_database_at_once(tmp_path: Path) -> None:
    # `serve` and `worker` often start together; both migrate. Neither may fail on the other's
    # tables (it did: "table owner already exists", and the worker died).
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = f"from service.db import make_engine, migrate; migrate(make_engine({url!r}))"
    starts = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(6)
    ]
    outcomes = [(p.communicate(timeout=120)[1].decode(), p.returncode) for p in starts]
    assert [status for _, status in outcomes] == [0] * 6, outcomes


def test_states_get_their_checks_without_losing_a_row(settings: Settings) -> None:
    # Upgrading from 0002 recreates tables on SQLite (that is how it adds a constraint); with
    # foreign keys on, dropping the old `friend` table would cascade to every source, scan,
    # match and mail of the friend. The rows must all come through, and the new checks hold.
    engine = _upgraded_from(settings, "0002", _ROWS_AT_0002)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE scan SET status = 'paused'"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE match SET status = 'gone'"))
    engine.dispose()


def test_owners_get_an_admin_and_friends_can_be_reported_without_losing_a_row(
    settings: Settings,
) -> None:
    # 0004: the first owner becomes the admin, nobody's address counts as confirmed (nobody
    # confirmed it), and a friend may now be `reported`, which 0003's check refused.
    engine = make_engine(settings.prepared().sqlalchemy_url)
    upgrade(engine, "0003")
    with engine.begin() as connection:
        for statement in [*_ROWS_AT_0002, _BOB_AT_0003]:
            connection.execute(text(statement))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE friend SET status = 'reported'"))
    before = _counts(engine)
    migrate(engine)
    assert _counts(engine) == before and all(before.values()), before
    with engine.begin() as connection:
        owners = connection.execute(
            text("SELECT email, is_admin, confirmed_at, frozen_at FROM owner ORDER BY id")
        ).all()
        assert [tuple(o) for o in owners] == [
            ("alice@example.org", True, None, None),
            ("bob@example.org", False, None, None),
        ]
        connection.execute(text("UPDATE friend SET status = 'reported'"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE owner SET is_admin = true WHERE id = 2"))  # one admin
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO report (owner_id, friend_name, friend_email, reason, status, "
                f"created_at) VALUES (2, 'T', 't@example.org', 'r', 'ignored', {_T})"
            )
        )
    engine.dispose()


def test_accepted_links_start_their_idle_time_and_sent_mails_lose_their_bodies(
    settings: Settings,
) -> None:
    # 0006: an accepted friend's link, which never expired before, now ends after
    # `link_idle_days` unused: it starts that time at the upgrade, so nobody is locked out. A
    # sent mail kept its links in clear; it keeps no body now (nothing reads it again).
    engine = _upgraded_from(settings, "0005", _ROWS_AT_0002)
    with Session(engine) as session:
        friend = session.get(Friend, 1)
        mail = session.exec(select(OutgoingMail)).one()
    assert friend is not None and friend.expires_at > utcnow() + timedelta(days=179)
    assert (mail.text, mail.html, mail.sealed_links) == ("", "", None)
    engine.dispose()


_TABLES = ("owner", "friend", "source", "scan", "match", "outgoingmail", "logintoken")
_T = "'2026-12-01 10:00:00+00:00'"
_ROWS_AT_0002 = [
    f"INSERT INTO owner (id, email, name, password_hash, created_at) "
    f"VALUES (1, 'alice@example.org', 'Alice', 'x', {_T})",
    f"INSERT INTO logintoken (token_hash, owner_id, kind, created_at, expires_at) "
    f"VALUES ('h', 1, 'api', {_T}, {_T})",
    f"INSERT INTO friend (id, owner_id, name, email, token_hash, sealed_token, expires_at, status, "
    f"created_at, reminders_sent) VALUES (1, 1, 'Tess', 'tess@example.org', 't', 'x', {_T}, "
    f"'accepted', {_T}, 0)",
    f"INSERT INTO source (id, owner_id, friend_id, kind, label, size_bytes, created_at) "
    f"VALUES (1, 1, 1, 'export', 'tess.zip', 10, {_T})",
    f"INSERT INTO scan (id, owner_id, friend_id, source_id, status, photos_done, matches, "
    f"attempts, created_at) VALUES (1, 1, 1, 1, 'done', 3, 1, 1, {_T})",
    f"INSERT INTO match (owner_id, friend_id, scan_id, photo, box_key, box, platform, distance, "
    f"band, review, status, sealed_encoding, thumbnail_scale, photo_digest, created_at, "
    f"check_failures) VALUES (1, 1, 1, 'a.jpg', '1,2,3,4', '[1,2,3,4]', 'other', 0.4, 'strong', "
    f"'confirmed', 'open', 'x', 1.0, 'd', {_T}, 0)",
    f'INSERT INTO outgoingmail (owner_id, friend_id, kind, idempotency_key, "to", subject, text, '
    f"html, headers, status, attempts, created_at) VALUES (1, 1, 'invitation', 'k', "
    f"'tess@example.org', 's', 't', 'h', '{{}}', 'sent', 1, {_T})",
]


_BOB_AT_0003 = (
    "INSERT INTO owner (id, email, name, password_hash, created_at) "
    f"VALUES (2, 'bob@example.org', 'Bob', 'x', {_T})"
)


def _upgraded_from(settings: Settings, revision: str, rows: list[str]) -> Engine:
    """A database at `revision` holding `rows`, migrated to the newest: every row came through."""
    engine = make_engine(settings.prepared().sqlalchemy_url)
    upgrade(engine, revision)
    with engine.begin() as connection:
        for statement in rows:
            connection.execute(text(statement))
    before = _counts(engine)
    migrate(engine)
    assert _counts(engine) == before and all(before.values()), before
    return engine


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            t: connection.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in _TABLES
        }
