"""Privacy promises: sealed biometrics, nothing left after leaving, withdrawal purges, caps hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from service.app import create_app
from service.config import Settings
from service.secrets_box import SecretBox
from service.tables import Match, ReferenceFace
from tests.conftest import make_settings
from tests.test_api_journey import export_zip, owner_token, wait_for_scan


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, consume=True)) as client:
        yield client


def _scanned_friend(client: TestClient, faces_dir: Path, tmp_path: Path) -> tuple[dict, str]:
    alice = owner_token(client, "alice@example.org", "Alice")
    photo = (faces_dir / "dev/obama/obama.jpg").read_bytes()
    client.post("/api/v1/reference-photos", headers=alice, files={"file": ("me.jpg", photo)})
    friend = client.post(
        "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
    ).json()
    token = friend["invite_url"].rsplit("/", 1)[1]
    client.post(f"/api/v1/invites/{token}/consent", json={"accept": True})
    data = export_zip(faces_dir, tmp_path).read_bytes()
    scan = client.post(f"/api/v1/invites/{token}/exports", files={"file": ("e.zip", data)})
    assert wait_for_scan(client, token, scan.json()["scan_id"])["status"] == "done"
    return alice, token


def _rows(client: TestClient) -> dict[str, int]:
    db = client.app.state.services.db  # type: ignore[attr-defined]
    with Session(db) as session:
        return {
            table.name: session.exec(select(func.count()).select_from(table)).one()
            for table in SQLModel.metadata.sorted_tables
            if table.name not in ("rateevent", "alembic_version", "periodic")  # not anyone's
        }


def test_it_seals_reference_encodings(
    client: TestClient, faces_dir: Path, settings: Settings
) -> None:
    alice = owner_token(client, "alice@example.org", "Alice")
    photo = (faces_dir / "dev/obama/obama.jpg").read_bytes()
    client.post("/api/v1/reference-photos", headers=alice, files={"file": ("me.jpg", photo)})
    with Session(client.app.state.services.db) as session:  # type: ignore[attr-defined]
        [ref] = session.exec(select(ReferenceFace)).all()
    encoding = SecretBox(settings.secret_key).open(ref.sealed_encoding)
    assert encoding.shape == (128,)
    assert encoding.astype("<f8").tobytes()[:16] not in ref.sealed_encoding
    with pytest.raises(Exception):  # noqa: B017 - any failure: the wrong key opens nothing
        SecretBox("another-key-" + "x" * 40).open(ref.sealed_encoding)


def test_it_keeps_encodings_only_of_matched_faces(
    client: TestClient, faces_dir: Path, tmp_path: Path, settings: Settings
) -> None:
    _scanned_friend(client, faces_dir, tmp_path)
    box = SecretBox(settings.secret_key)
    with Session(client.app.state.services.db) as session:  # type: ignore[attr-defined]
        matches = session.exec(select(Match)).all()
        refs = session.exec(select(ReferenceFace)).all()
    # The export held 12 faces (strangers at a party, biden, dogs had none); 3 were alice's.
    assert len(matches) == 3
    reference = box.open(refs[0].sealed_encoding)
    for match in matches:
        assert np.linalg.norm(box.open(match.sealed_encoding) - reference) <= 0.6


def test_it_deletes_everything_of_an_owner_who_leaves(
    client: TestClient, faces_dir: Path, tmp_path: Path, settings: Settings
) -> None:
    alice, _ = _scanned_friend(client, faces_dir, tmp_path)
    bob = owner_token(client, "bob@example.org", "Bob")
    before = _rows(client)
    assert before["match"] == 3 and before["owner"] == 2
    assert client.delete("/api/v1/me", headers=alice).status_code == 204
    after = _rows(client)
    # bob signed up and confirmed his address (by its mail): his rows stay
    bobs = {"owner": 1, "logintoken": 1, "auditevent": 2, "outgoingmail": 1}
    assert after == {name: bobs.get(name, 0) for name in after}
    assert client.get("/api/v1/me", headers=alice).status_code == 401
    assert client.get("/api/v1/me", headers=bob).status_code == 200
    assert list(settings.quarantine_dir.iterdir()) == []


def test_it_purges_a_friends_data_when_they_withdraw(
    client: TestClient, faces_dir: Path, tmp_path: Path
) -> None:
    alice, token = _scanned_friend(client, faces_dir, tmp_path)
    answer = client.post(f"/api/v1/invites/{token}/consent", json={"accept": False})
    assert answer.json()["status"] == "withdrawn"
    rows = _rows(client)
    assert rows["match"] == rows["scan"] == rows["source"] == 0
    friends = client.get("/api/v1/friends", headers=alice).json()
    assert [(f["status"], f["matches"]) for f in friends] == [("withdrawn", 0)]
    upload = client.post(f"/api/v1/invites/{token}/exports", files={"file": ("e.zip", b"PK")})
    assert upload.status_code == 403


def test_it_refuses_an_upload_over_the_size_cap(faces_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_upload_bytes=50_000)
    with TestClient(create_app(settings, consume=False)) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        friend = client.post(
            "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
        ).json()
        token = friend["invite_url"].rsplit("/", 1)[1]
        client.post(f"/api/v1/invites/{token}/consent", json={"accept": True})
        big = export_zip(faces_dir, tmp_path).read_bytes()
        answer = client.post(f"/api/v1/invites/{token}/exports", files={"file": ("e.zip", big)})
        assert answer.status_code == 413
        text = client.post(
            f"/api/v1/invites/{token}/exports",
            files={"file": ("e.zip", b"just some text, renamed")},
        )
        assert text.status_code == 415
        assert list(settings.quarantine_dir.iterdir()) == []


def test_it_rate_limits_log_in_attempts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, login_attempts_per_15min=3)
    with TestClient(create_app(settings, consume=False)) as client:
        owner_token(client, "alice@example.org", "Alice")
        wrong = {"email": "alice@example.org", "password": "not her password"}
        codes = [client.post("/api/v1/auth/token", json=wrong).status_code for _ in range(4)]
        assert codes[:2] == [401, 401] and codes[-1] == 429
        # The right password is refused too until the window has passed.
        right = {"email": "alice@example.org", "password": "correct horse battery"}
        assert client.post("/api/v1/auth/token", json=right).status_code == 429


def test_it_rate_limits_invitations(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, invitations_per_hour=2)
    with TestClient(create_app(settings, consume=False)) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        codes = [
            client.post(
                "/api/v1/friends",
                headers=alice,
                json={"name": f"F{n}", "email": f"f{n}@example.org"},
            ).status_code
            for n in range(3)
        ]
        assert codes == [201, 201, 429]
