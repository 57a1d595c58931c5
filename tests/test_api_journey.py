"""The whole journey through the JSON API, with real photos, a real queue and a real database."""

from __future__ import annotations

import re
import time
import zipfile
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from service.app import create_app
from service.notify.mail import unsealed
from service.tables import OutgoingMail
from tests.conftest import DATABASES, QUEUES, make_settings


def export_zip(faces_dir: Path, folder: Path) -> Path:
    path = folder / "facebook-export.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.write(faces_dir / "dev/obama/obama-480p.jpg", "photos/2016/IMG_0001.jpg")
        z.write(faces_dir / "dev/obama/obama-480p.jpg", "photos/2016/IMG_0001 (1).jpg")
        z.write(faces_dir / "dev/_multi/obama_and_biden.jpg", "photos/2017/summit.jpg")
        z.write(faces_dir / "dev/_no_human_faces/dogs.jpg", "photos/dogs.jpg")
        z.write(faces_dir / "dev-bbt/_group_unlabeled/bbt3.jpg", "photos/party.jpg")
        z.writestr("notes/readme.txt", "not a photo")
    return path


def wait_for_scan(client: TestClient, token: str, scan_id: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scan = client.get(f"/api/v1/invites/{token}/scans/{scan_id}").json()
        if scan["status"] in ("done", "failed"):
            return scan
        time.sleep(0.3)
    raise AssertionError(f"scan {scan_id} did not finish in {timeout} s: {scan}")


def owner_token(
    client: TestClient, email: str, name: str, *, confirm: bool = True
) -> dict[str, str]:
    """Register (PHOTO_REMOVAL_SIGNUPS=open, as make_settings has it) and log in; unless told
    not to, confirm the address with the link of the confirmation mail, as the owner would."""
    password = "correct horse battery"
    registered = client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "name": name}
    )
    assert registered.status_code == 201, registered.text
    if confirm:
        token = mailed_link(client, email, "confirm_address").rsplit("/", 1)[1]
        assert client.post("/api/v1/auth/confirm", json={"token": token}).status_code == 200
    answer = client.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert answer.status_code == 200
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def mailed_link(client: TestClient, to: str, kind: str) -> str:
    """The link in the newest mail of this kind to this address, as written (sent or not)."""
    return mailed_link_in(client.app, to, kind)  # type: ignore[arg-type]


def mailed_link_in(app: FastAPI, to: str, kind: str) -> str:
    with Session(app.state.services.db) as session:
        mail = session.exec(
            select(OutgoingMail)
            .where(OutgoingMail.to == to, OutgoingMail.kind == kind)
            .order_by(col(OutgoingMail.id).desc())
        ).first()
    assert mail is not None, f"no {kind} mail to {to}"
    assert "http" not in mail.text + mail.html  # stored with placeholders, the links sealed
    text, _, _ = unsealed(mail, app.state.services.box)
    found = re.search(r"https?://\S+", text)
    assert found, text
    return found.group(0)


@pytest.mark.parametrize(
    ("database", "queue"), sorted({("sqlite", "sqlite"), (DATABASES[-1], QUEUES[-1])})
)
def test_it_finds_the_owner_in_a_friends_export(
    faces_dir: Path, tmp_path: Path, database: str, queue: str
) -> None:
    settings = make_settings(tmp_path, database=database, queue=queue)
    with TestClient(create_app(settings, consume=True)) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        photo = (faces_dir / "dev/obama/obama.jpg").read_bytes()
        ref = client.post(
            "/api/v1/reference-photos",
            headers=alice,
            files={"file": ("me.jpg", photo, "image/jpeg")},
        )
        assert ref.status_code == 201, ref.text
        assert client.get(ref.json()["thumbnail_url"], headers=alice).content[:2] == b"\xff\xd8"

        friend = client.post(
            "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
        )
        assert friend.status_code == 201
        token = friend.json()["invite_url"].rsplit("/", 1)[1]
        assert friend.json()["status"] == "invited"

        # The invitation mail went out at once, into the outbox, with the link in it.
        mail = wait_for_mail(settings.outbox_dir, to="dana@example.org")
        assert mail["Reply-To"] == "Alice <alice@example.org>"
        assert friend.json()["invite_url"] in mail.get_body(("plain",)).get_content()

        page = client.get(f"/invite/{token}")
        assert page.status_code == 200 and "Alice" in page.text

        archive = export_zip(faces_dir, tmp_path)
        upload = {"file": ("export.zip", archive.read_bytes(), "application/zip")}
        assert client.post(f"/api/v1/invites/{token}/exports", files=upload).status_code == 403
        assert (
            client.post(f"/api/v1/invites/{token}/consent", json={"accept": True}).status_code
            == 200
        )
        queued = client.post(f"/api/v1/invites/{token}/exports", files=upload)
        assert queued.status_code == 202, queued.text

        scan = wait_for_scan(client, token, queued.json()["scan_id"])
        assert scan["status"] == "done", scan
        assert scan["photos_total"] == scan["photos_done"] == 5
        assert scan["matches"] == 3
        assert list(settings.quarantine_dir.iterdir()) == []  # the upload is gone

        friend_id = friend.json()["id"]
        matches = client.get(f"/api/v1/friends/{friend_id}/matches", headers=alice).json()
        assert sorted(m["photo"] for m in matches) == [
            "photos/2016/IMG_0001 (1).jpg",
            "photos/2016/IMG_0001.jpg",
            "photos/2017/summit.jpg",
        ]
        assert all(m["review"] == "pending" and m["status"] == "open" for m in matches)
        thumb = client.get(matches[0]["thumbnail_url"], headers=alice)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"

        reviewed = client.post(
            f"/api/v1/matches/{matches[0]['id']}/review",
            headers=alice,
            json={"decision": "confirmed"},
        )
        assert reviewed.status_code == 200 and reviewed.json()["review"] == "confirmed"
        listed = client.get("/api/v1/friends", headers=alice).json()
        assert listed[0]["matches"] == 3 and listed[0]["open_items"] == 1
        assert listed[0]["status"] == "accepted"


CONFIRMATION_SUBJECT = "Please confirm your address"


def wait_for_mail(outbox: Path, timeout: float = 20, to: str | None = None):  # type: ignore[no-untyped-def]
    """The first mail in the outbox to `to`; without it, the first but the owners' own
    confirmation mails (owner_token sends one for each owner)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")):
            mail = message_from_bytes(path.read_bytes(), policy=policy.default)
            if (mail["To"] == to) if to else CONFIRMATION_SUBJECT not in str(mail["Subject"]):
                return mail
        time.sleep(0.1)
    raise AssertionError("no mail in the outbox")
