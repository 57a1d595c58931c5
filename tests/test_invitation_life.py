"""The invitation's life, as alice (the owner), bob (another owner), dana (her friend) and charlie
(holding a dead or wrong link) live it: inviting once, sending again, cancelling, declining,
expiring, and no link kept in clear in the mails waiting to go out."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from service.app import create_app
from service.notify.mail import deliver, unsealed
from service.notify.transport import OutboxTransport
from service.states import FriendStatus
from service.tables import (
    AuditEvent,
    Friend,
    OutgoingMail,
    ReferenceFace,
    Scan,
    Source,
    utcnow,
)
from tests.conftest import DATABASES, make_settings
from tests.test_api_journey import mailed_link, owner_token
from tests.test_pages import _client, _confirm, _csrf, _invite, _sign_up


@dataclass
class Alice:
    client: TestClient
    headers: dict[str, str]
    bob: dict[str, str]

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.client.app.state.services  # type: ignore[attr-defined]

    def invite(self, name: str = "Dana", email: str = "dana@example.org"):  # type: ignore[no-untyped-def]
        return self.client.post(
            "/api/v1/friends", headers=self.headers, json={"name": name, "email": email}
        )

    def friend(self, friend_id: int) -> Friend | None:
        with Session(self.services.db) as session:
            return session.get(Friend, friend_id)

    def mails_to(self, email: str) -> list[OutgoingMail]:
        with Session(self.services.db) as session:
            query = select(OutgoingMail).where(OutgoingMail.to == email)
            return list(session.exec(query.order_by(col(OutgoingMail.id))).all())

    def age(self, friend_id: int, expires_in: timedelta) -> None:
        """Move the friend's expiry to `expires_in` from now (negative: gone by)."""
        with Session(self.services.db) as session:
            session.execute(
                update(Friend)
                .where(col(Friend.id) == friend_id)
                .values(expires_at=utcnow() + expires_in)
            )
            session.commit()


@pytest.fixture(params=DATABASES)
def alice(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Alice]:
    settings = make_settings(tmp_path, database=request.param)
    with TestClient(create_app(settings, consume=False)) as client:
        headers = owner_token(client, "alice@example.org", "Alice")
        bob = owner_token(client, "bob@example.org", "Bob")
        with Session(client.app.state.services.db) as session:  # type: ignore[attr-defined]
            # Her face crop, as the invitation page shows it (the matrix needs no real face).
            session.add(ReferenceFace(owner_id=1, sealed_encoding=b"-", thumbnail=b"\xff\xd8"))
            session.commit()
        yield Alice(client, headers, bob)


def _token(answer) -> str:  # type: ignore[no-untyped-def]
    return str(answer.json()["invite_url"].rsplit("/", 1)[1])


def _export() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("photos/a.jpg", b"not really a photo")
    return archive.getvalue()


def _dead_everywhere(client: TestClient, token: str) -> None:
    """Every door of a dead link answers 404: the API with its detail, the pages kindly."""
    for path in ("checklist", "scans"):
        answer = client.get(f"/api/v1/invites/{token}/{path}")
        assert answer.status_code == 404 and set(answer.json()) == {"detail"}, path
    consent = client.post(f"/api/v1/invites/{token}/consent", json={"accept": True})
    assert consent.status_code == 404
    for path in (f"/invite/{token}", f"/invite/{token}/faces/1", f"/checklist/{token}"):
        page = client.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 404, path
        assert "This link no longer works" in page.text, path


# ---- inviting once ----


def test_it_invites_an_address_once(alice: Alice) -> None:
    assert alice.invite().status_code == 201
    again = alice.invite(name="Dana B.", email="Dana@Example.org")
    assert again.status_code == 409
    assert "you invited dana@example.org already" in again.json()["detail"]
    # Another owner may invite the same person: each owner's invitations are their own.
    bob = alice.client.post(
        "/api/v1/friends", headers=alice.bob, json={"name": "Dana", "email": "dana@example.org"}
    )
    assert bob.status_code == 201


# ---- revoking ----


def test_it_revokes_an_invitation_and_deletes_what_the_friend_shared(alice: Alice) -> None:
    created = alice.invite()
    friend_id, token = created.json()["id"], _token(created)
    client = alice.client
    assert client.post(f"/api/v1/invites/{token}/consent", json={"accept": True}).is_success
    upload = client.post(f"/api/v1/invites/{token}/exports", files={"file": ("e.zip", _export())})
    assert upload.status_code == 202
    with Session(alice.services.db) as session:
        [source] = session.exec(select(Source).where(Source.friend_id == friend_id)).all()
    assert source.upload_path and Path(source.upload_path).exists()
    # Bob cannot cancel alice's invitation, nor learn it exists; charlie is told to log in.
    assert client.delete(f"/api/v1/friends/{friend_id}", headers=alice.bob).status_code == 404
    assert client.delete(f"/api/v1/friends/{friend_id}").status_code == 401

    assert client.delete(f"/api/v1/friends/{friend_id}", headers=alice.headers).status_code == 204
    _dead_everywhere(client, token)
    assert alice.friend(friend_id) is None
    with Session(alice.services.db) as session:
        assert session.exec(select(Source).where(Source.friend_id == friend_id)).all() == []
        assert session.exec(select(Scan).where(Scan.friend_id == friend_id)).all() == []
        actions = session.exec(select(AuditEvent.action).where(AuditEvent.owner_id == 1)).all()
    assert "invitation_revoked" in actions
    assert not Path(source.upload_path).exists()  # the upload went with the commit
    assert alice.mails_to("dana@example.org") == []
    assert client.delete(f"/api/v1/friends/{friend_id}", headers=alice.headers).status_code == 404
    # Cancelled, the address may be invited afresh.
    assert alice.invite().status_code == 201


def test_it_erases_the_mails_to_a_friend_who_withdraws(alice: Alice, tmp_path: Path) -> None:
    token = _token(alice.invite())
    settings, db = alice.services.settings, alice.services.db
    [mail] = alice.mails_to("dana@example.org")
    assert deliver(db, OutboxTransport(settings.outbox_dir), settings, mail.id or 0) == "sent"
    [eml] = settings.outbox_dir.glob("*.eml")
    sent = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert f"/invite/{token}" in sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    client = alice.client
    assert client.post(f"/api/v1/invites/{token}/consent", json={"accept": True}).is_success
    assert client.post(f"/api/v1/invites/{token}/consent", json={"accept": False}).is_success
    assert alice.mails_to("dana@example.org") == [] and not eml.exists()


# ---- sending again ----


def test_it_sends_a_new_link_and_kills_the_old_one(alice: Alice) -> None:
    created = alice.invite()
    friend_id, old = created.json()["id"], _token(created)
    client = alice.client
    assert client.post(f"/api/v1/friends/{friend_id}/resend", headers=alice.bob).status_code == 404
    answer = client.post(f"/api/v1/friends/{friend_id}/resend", headers=alice.headers)
    assert answer.status_code == 202
    assert answer.json()["detail"].startswith("a new link is on its way to dana@example.org")
    _, second = alice.mails_to("dana@example.org")
    assert second.subject.startswith("A new link: Alice")
    new = mailed_link(client, "dana@example.org", "invitation").rsplit("/", 1)[1]
    assert new != old
    _dead_everywhere(client, old)
    assert client.get(f"/invite/{new}").status_code == 200
    # An accepted friend who lost the mail gets a new key to the same things.
    assert client.post(f"/api/v1/invites/{new}/consent", json={"accept": True}).is_success
    assert client.post(f"/api/v1/friends/{friend_id}/resend", headers=alice.headers).is_success
    newest = mailed_link(client, "dana@example.org", "invitation").rsplit("/", 1)[1]
    assert client.get(f"/api/v1/invites/{newest}/checklist").status_code == 200
    assert client.get(f"/api/v1/invites/{new}/checklist").status_code == 404
    friend = alice.friend(friend_id)
    assert friend is not None and friend.status == FriendStatus.accepted


def test_it_does_not_ask_again_a_friend_who_declined(alice: Alice) -> None:
    created = alice.invite()
    friend_id, token = created.json()["id"], _token(created)
    assert alice.client.post(f"/api/v1/invites/{token}/consent", json={"accept": False}).is_success
    answer = alice.client.post(f"/api/v1/friends/{friend_id}/resend", headers=alice.headers)
    assert answer.status_code == 409 and "declined" in answer.json()["detail"]
    assert alice.mails_to("dana@example.org") == []  # the invitation mail went with the answer


# ---- what a friend who declined keeps ----


def test_a_friend_who_declined_keeps_only_the_invitation(alice: Alice) -> None:
    token = _token(alice.invite())
    client = alice.client
    assert client.post(f"/api/v1/invites/{token}/consent", json={"accept": False}).is_success
    assert client.get(f"/invite/{token}").status_code == 200  # to accept after all
    assert client.get(f"/invite/{token}/faces/1").status_code == 200  # whose face it is
    assert client.get(f"/invite/{token}/report").status_code == 200
    for path in ("checklist", "scans"):
        assert client.get(f"/api/v1/invites/{token}/{path}").status_code == 403, path
    upload = client.post(f"/api/v1/invites/{token}/exports", files={"file": ("e.zip", _export())})
    assert upload.status_code == 403
    for page in (f"/checklist/{token}", f"/invite/{token}/share"):
        answer = client.get(page, follow_redirects=False)
        assert answer.headers["location"] == f"/invite/{token}", page
    assert client.post(f"/api/v1/invites/{token}/consent", json={"accept": True}).is_success
    assert client.get(f"/api/v1/invites/{token}/checklist").status_code == 200


# ---- expiry ----


def test_an_unanswered_invitation_expires(alice: Alice) -> None:
    created = alice.invite()
    friend_id, token = created.json()["id"], _token(created)
    alice.age(friend_id, -timedelta(seconds=1))
    _dead_everywhere(alice.client, token)
    page = alice.client.get(f"/invite/{token}", headers={"Accept": "text/html"})
    assert "this link has expired" in page.text.lower()
    # Sending it again gives a new link with a new time.
    assert alice.client.post(
        f"/api/v1/friends/{friend_id}/resend", headers=alice.headers
    ).is_success
    new = mailed_link(alice.client, "dana@example.org", "invitation").rsplit("/", 1)[1]
    assert alice.client.get(f"/invite/{new}").status_code == 200


def test_an_accepted_link_lives_on_while_used_and_ends_when_forgotten(alice: Alice) -> None:
    created = alice.invite()
    friend_id, token = created.json()["id"], _token(created)
    client, idle = alice.client, timedelta(days=alice.services.settings.link_idle_days)
    assert client.post(f"/api/v1/invites/{token}/consent", json={"accept": True}).is_success
    friend = alice.friend(friend_id)
    assert friend is not None and friend.expires_at > utcnow() + idle - timedelta(minutes=1)
    # Used two days before it would end: it lives `link_idle_days` from that visit.
    alice.age(friend_id, timedelta(days=2))
    assert client.get(f"/api/v1/invites/{token}/checklist").status_code == 200
    friend = alice.friend(friend_id)
    assert friend is not None and friend.expires_at > utcnow() + idle - timedelta(minutes=1)
    # Not used for that long: it opens nothing, but the owner can send a new one.
    alice.age(friend_id, -timedelta(seconds=1))
    _dead_everywhere(client, token)
    assert client.post(f"/api/v1/friends/{friend_id}/resend", headers=alice.headers).is_success


def test_a_reported_link_is_dead_for_good(alice: Alice) -> None:
    created = alice.invite()
    friend_id, token = created.json()["id"], _token(created)
    answer = alice.client.post(f"/api/v1/invites/{token}/report", json={"reason": "who?"})
    assert answer.status_code == 202
    _dead_everywhere(alice.client, token)
    page = alice.client.get(f"/invite/{token}", headers={"Accept": "text/html"})
    assert "you reported this invitation" in page.text.lower()
    resend = alice.client.post(f"/api/v1/friends/{friend_id}/resend", headers=alice.headers)
    assert resend.status_code == 403  # alice is on hold until the admin looks into it


# ---- no link in clear ----


def test_mails_waiting_to_go_keep_no_link_in_clear(alice: Alice) -> None:
    token = _token(alice.invite())
    [mail] = alice.mails_to("dana@example.org")
    stored = " ".join([mail.subject, mail.text, mail.html, str(mail.headers)])
    assert token not in stored and "/invite/" not in stored
    assert mail.sealed_links and token.encode() not in mail.sealed_links
    # A friend's name cannot pose as a placeholder: the nonce is the mail's own.
    alice.invite(name="[link:invite_url:0]", email="eve@example.org")
    [eve] = alice.mails_to("eve@example.org")
    assert "[link:invite_url:0]" in unsealed(eve, alice.services.box)[0]


# ---- the owner's pages ----


def test_the_owner_sees_pending_invitations_and_can_resend_or_cancel_them(
    tmp_path: Path,
) -> None:
    app = create_app(make_settings(tmp_path), consume=False)
    with _client(app) as browser:
        browser.cookies.set("session", _sign_up(browser, "Alice", "alice@example.org"))
        _confirm(browser, "alice@example.org")
        assert _invite(browser, "Dana", "dana@example.org").status_code == 303
        again = _invite(browser, "D.", "dana@example.org")
        assert again.status_code == 422  # the dashboard again, saying why under the address
        assert "you invited dana@example.org already" in again.text.lower()
        dashboard = browser.get("/")
        assert "Waiting for an answer" in dashboard.text
        for action in ("resend", "revoke"):
            assert f'action="/friends/1/{action}"' in dashboard.text
        csrf = _csrf(browser, "/")
        sent = browser.post("/friends/1/resend", data={"csrf_token": csrf})
        assert sent.headers["location"] == "/#invitations"
        assert "A new link is on its way to Dana" in browser.get("/").text
        cancelled = browser.post("/friends/1/revoke", data={"csrf_token": _csrf(browser, "/")})
        assert cancelled.status_code == 303
        home = browser.get("/")
        assert "The invitation to Dana is cancelled" in home.text
        assert "Waiting for an answer" not in home.text
        with Session(app.state.services.db) as session:
            assert session.exec(select(Friend)).all() == []
