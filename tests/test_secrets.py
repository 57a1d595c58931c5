"""No secret in the clear: private files, logs without tokens, nothing left of a deleted owner."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.app import create_app
from service.tables import RateEvent
from tests.conftest import make_settings
from tests.test_api_journey import owner_token, wait_for_mail
from tests.test_chaos import Fleet, until
from tests.test_scan_resume import slow_export


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_it_keeps_its_files_to_itself(faces_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, secret_key="")
    with TestClient(create_app(settings, consume=True)) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        friend = client.post(
            "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
        ).json()
        wait_for_mail(settings.outbox_dir)
        token = friend["invite_url"].rsplit("/", 1)[1]
        client.post(f"/api/v1/invites/{token}/consent", json={"accept": True})
        client.app.state.services.jobs.context.stopping.set()  # type: ignore[attr-defined]
        export = slow_export(faces_dir, tmp_path).read_bytes()
        client.post(f"/api/v1/invites/{token}/exports", files={"file": ("e.zip", export)})
        data = settings.data_dir
        folders = [data, *(p for p in data.rglob("*") if p.is_dir())]
        files = [p for p in data.rglob("*") if p.is_file() and not p.name.endswith("-lock")]
        names = {p.name for p in files}
        assert {"photo-removal.db", "queue.db", "secret.key"} <= names, names
        assert any(p.parent.name == "quarantine" for p in files)  # the upload, waiting
        assert any(p.suffix == ".eml" for p in files)
        assert {str(p): oct(mode(p)) for p in folders if mode(p) != 0o700} == {}
        assert {str(p): oct(mode(p)) for p in files if mode(p) != 0o600} == {}


def test_its_access_log_holds_no_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).prepared()
    fleet = Fleet(settings, tmp_path / "serve.log")
    try:
        url = fleet.serve()
        secret = "S3cretInvitationToken0123456789abcdef"
        for path in (
            f"/invite/{secret}",
            f"/api/v1/invites/{secret}/checklist",
            f"/confirm/{secret}",
        ):
            httpx.get(url + path, timeout=10)
        httpx.get(f"{url}/signup?invitation={secret}", timeout=10)
        until(lambda: fleet.log.read_text().count('"GET /') >= 4, 10, "the access log lines")
    finally:
        fleet.stop()
    log = fleet.log.read_text()
    assert "GET /invite/…" in log and secret not in log


def test_nothing_of_a_deleted_owner_remains(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings, consume=True)) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        client.post(
            "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
        )
        wait_for_mail(settings.outbox_dir)
        for _ in range(3):
            client.post(
                "/api/v1/auth/token", json={"email": "alice@example.org", "password": "wrong one"}
            )
        db = client.app.state.services.db  # type: ignore[attr-defined]
        with Session(db) as session:
            keys = [e.key for e in session.exec(select(RateEvent)).all()]
        assert any("alice@example.org" in key for key in keys), keys
        assert client.delete("/api/v1/me", headers=alice).status_code == 204
        with Session(db) as session:
            keys = [e.key for e in session.exec(select(RateEvent)).all()]
        # What is left counts sign-ups from the client's address, and names no one.
        assert [k for k in keys if not k.startswith("register:")] == [], keys
        assert list(settings.outbox_dir.iterdir()) == []
    for name in ("photo-removal.db", "photo-removal.db-wal"):
        path = settings.data_dir / name
        if path.exists():
            raw = path.read_bytes()
            assert b"alice@example.org" not in raw and b"dana@example.org" not in raw, name
