"""The owner hears what happens: a friend accepted or declined, a scan has photos to review; and
chooses which of these mails (and the digest) to get."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from service.app import create_app
from service.notify import owner_mails
from service.tables import OutgoingMail
from tests.conftest import make_settings
from tests.pages_support import build_export, face_photo
from tests.test_api_journey import owner_token
from tests.test_pages import _client, _csrf, _sign_up


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path), consume=False)) as client:
        client.app.state.services.jobs.huey.immediate = True  # type: ignore[attr-defined]
        yield client


def _owner_mails(client: TestClient, kind: str) -> list[OutgoingMail]:
    with Session(client.app.state.services.db) as session:  # type: ignore[attr-defined]
        query = select(OutgoingMail).where(
            OutgoingMail.kind == kind, OutgoingMail.to == "alice@example.org"
        )
        return list(session.exec(query.order_by(col(OutgoingMail.id))).all())


def _invite(client: TestClient, alice: dict[str, str], name: str) -> str:
    body = {"name": name, "email": f"{name.lower()}@example.org"}
    answer = client.post("/api/v1/friends", headers=alice, json=body)
    return str(answer.json()["invite_url"].rsplit("/", 1)[1])


def test_it_tells_the_owner_who_accepted_declined_or_withdrew(client: TestClient) -> None:
    alice = owner_token(client, "alice@example.org", "Alice")
    dana, eve = _invite(client, alice, "Dana"), _invite(client, alice, "Eve")
    client.post(f"/api/v1/invites/{dana}/consent", json={"accept": True})
    client.post(f"/api/v1/invites/{eve}/consent", json={"accept": False})
    [accepted] = _owner_mails(client, "friend_accepted")
    assert accepted.subject == "Dana agreed to help you"
    assert "http://testserver/friends/1" in accepted.text
    [declined] = _owner_mails(client, "friend_declined")
    assert declined.subject == "Eve declined your invitation"
    client.post(f"/api/v1/invites/{dana}/consent", json={"accept": False})
    withdrew = _owner_mails(client, "friend_declined")
    assert [m.subject for m in withdrew] == [
        "Eve declined your invitation",
        "Dana withdrew their consent",
    ]
    # Muted: no more of these.
    muted = client.put("/api/v1/me/mails", headers=alice, json={"muted": ["friend_answered"]})
    assert muted.status_code == 200 and muted.json()["muted"] == ["friend_answered"]
    client.post(f"/api/v1/invites/{dana}/consent", json={"accept": True})
    assert len(_owner_mails(client, "friend_accepted")) == 1
    wrong = client.put("/api/v1/me/mails", headers=alice, json={"muted": ["everything"]})
    assert wrong.status_code == 422


def test_it_tells_the_owner_how_many_photos_wait_for_review(
    client: TestClient, tmp_path: Path
) -> None:
    alice = owner_token(client, "alice@example.org", "Alice")
    photo = face_photo(Path("dev/obama/obama.jpg")).read_bytes()
    client.post("/api/v1/reference-photos", headers=alice, files={"file": ("a.jpg", photo)})
    dana = _invite(client, alice, "Dana")
    client.post(f"/api/v1/invites/{dana}/consent", json={"accept": True})
    export = build_export(tmp_path).read_bytes()
    queued = client.post(f"/api/v1/invites/{dana}/exports", files={"file": ("e.zip", export)})
    assert queued.status_code == 202
    [mail] = _owner_mails(client, "scan_done")
    assert mail.subject == "2 photos from Dana may show you"
    assert "http://testserver/friends/1" in mail.text and mail.status == "sent"


def test_the_owner_chooses_the_mails_on_the_account_page(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), consume=False)
    with _client(app) as browser:
        browser.cookies.set("session", _sign_up(browser, "Alice", "alice@example.org"))
        page = browser.get("/account")
        assert page.text.count('name="wanted"') == len(owner_mails.NOTICES)
        saved = browser.post(
            "/account/mails", data={"csrf_token": _csrf(browser, "/account"), "wanted": "scan_done"}
        )
        assert saved.headers["location"] == "/account#mails"
        again = browser.get("/account")
        assert "Your choice of mails is saved." in again.text
        assert 'id="mail-scan_done" name="wanted" type="checkbox" value="scan_done" checked' in (
            again.text
        )
        assert 'value="digest" checked' not in again.text
