"""The stalker problem. mallory signs up where anyone may, calls herself "Mum" and invites the
victim's friends: dana, eve and fred. Every friend sees who really asks (her confirmed address,
replies going to it) and can report her; a report kills the link, deletes what the friend shared,
freezes mallory (no invitation, no new scan) and reaches alice, the admin, who clears or deletes
her. bob is another owner, charlie nobody."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select

from service.app import create_app
from service.config import Settings
from service.notify.mail import unsealed
from service.tables import Friend, OutgoingMail, Report, Scan, Source
from tests.conftest import DATABASES, make_settings
from tests.test_api_journey import owner_token
from tests.test_pages import _context, _csrf, _template

REASON = "I don't know this person: my mum died in 2019"


@dataclass
class Stalked:
    client: TestClient
    settings: Settings
    alice: dict[str, str]
    mallory: dict[str, str]
    tokens: dict[str, str]  # each friend's invitation token
    mallory_id: int

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.client.app.state.services.db  # type: ignore[attr-defined]

    def report(self, who: str, reason: str = REASON):  # type: ignore[no-untyped-def]
        url = f"/api/v1/invites/{self.tokens[who]}/report"
        return self.client.post(url, json={"reason": reason})

    def upload(self, who: str):  # type: ignore[no-untyped-def]
        url = f"/api/v1/invites/{self.tokens[who]}/exports"
        return self.client.post(url, files={"file": ("export.zip", _export())})

    def profile(self, who: str):  # type: ignore[no-untyped-def]
        url = f"/api/v1/invites/{self.tokens[who]}/profiles"
        return self.client.post(url, json={"url": "https://example.org/@dana"})

    def invite(self, name: str):  # type: ignore[no-untyped-def]
        body = {"name": name, "email": f"{name.lower()}@example.org"}
        return self.client.post("/api/v1/friends", headers=self.mallory, json=body)


def _export() -> bytes:
    photo = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 160, 140)).save(photo, "JPEG")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("photos/beach.jpg", photo.getvalue())
    return out.getvalue()


def _world(settings: Settings) -> Iterator[Stalked]:
    with TestClient(create_app(settings, consume=False)) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        mallory = owner_token(client, "mallory@example.org", "Mum")  # her own address
        tokens = {}
        for name in ("Dana", "Eve", "Fred"):
            body = {"name": name, "email": f"{name.lower()}@example.org"}
            friend = client.post("/api/v1/friends", headers=mallory, json=body)
            assert friend.status_code == 201, friend.text
            tokens[name.lower()] = friend.json()["invite_url"].rsplit("/", 1)[1]
        for who in ("dana", "eve"):
            consent = client.post(f"/api/v1/invites/{tokens[who]}/consent", json={"accept": True})
            assert consent.status_code == 200
        mallory_id = client.get("/api/v1/me", headers=mallory).json()["id"]
        yield Stalked(client, settings, alice, mallory, tokens, mallory_id)


@pytest.fixture(params=DATABASES)
def stalked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stalked]:
    yield from _world(make_settings(tmp_path, database=request.param))


@pytest.fixture
def stalked_sqlite(tmp_path: Path) -> Iterator[Stalked]:
    yield from _world(make_settings(tmp_path))


def _mail(world: Stalked, kind: str, to: str) -> OutgoingMail:
    with Session(world.db) as session:
        query = select(OutgoingMail).where(OutgoingMail.kind == kind, OutgoingMail.to == to)
        [mail] = session.exec(query).all()
    return mail


# ---- who is asking ----


def test_it_tells_the_friend_who_really_asks_and_where_to_reply(stalked_sqlite: Stalked) -> None:
    world = stalked_sqlite
    mail = _mail(world, "invitation", "dana@example.org")
    assert mail.headers["Reply-To"] == "Mum <mallory@example.org>"
    assert mail.subject == "Mum (mallory@example.org) asks for your help with photos of them"
    report = f"http://testserver/invite/{world.tokens['dana']}/report"
    for body in unsealed(mail, world.client.app.state.services.box)[:2]:  # type: ignore[attr-defined]
        assert "mallory@example.org" in body and report in body
        assert "please check that you know mallory@example.org" in body
    page = world.client.get(f"/invite/{world.tokens['fred']}")
    assert _template(page) == "invite.html"
    assert '<a href="mailto:mallory@example.org">mallory@example.org</a>' in page.text
    assert "this address is confirmed" in page.text
    assert "Please check two things before you agree:</strong> that you know this address" in (
        page.text
    )
    assert f'href="/invite/{world.tokens["fred"]}/report"' in page.text


# ---- a report ----


def test_it_freezes_a_reported_owner_and_tells_the_admin(stalked: Stalked) -> None:
    world = stalked
    assert world.upload("dana").status_code == 202  # queued: no consumer runs here
    assert list(world.settings.quarantine_dir.iterdir())
    answer = world.report("dana")
    assert answer.status_code == 202, answer.text
    assert answer.json()["detail"].startswith("thank you: this link no longer works")

    # The link is dead everywhere, and what dana shared is gone.
    dana = world.tokens["dana"]
    for method, url in [
        ("GET", f"/invite/{dana}"),
        ("GET", f"/api/v1/invites/{dana}/scans"),
        ("POST", f"/api/v1/invites/{dana}/report"),
    ]:
        assert world.client.request(method, url, json={"reason": "x"}).status_code == 404, url
    with Session(world.db) as session:
        friend = session.exec(select(Friend).where(Friend.email == "dana@example.org")).one()
        assert friend.status == "reported"
        assert session.exec(select(Source).where(Source.friend_id == friend.id)).all() == []
        assert session.exec(select(Scan).where(Scan.friend_id == friend.id)).all() == []
    assert list(world.settings.quarantine_dir.iterdir()) == []

    # mallory is frozen: no invitation of any kind, and nothing new is scanned for her.
    me = world.client.get("/api/v1/me", headers=world.mallory).json()
    assert me["frozen"] is True
    refused = world.invite("Gina")
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("your account is on hold: a friend reported")
    owners = world.client.post(
        "/api/v1/owner-invitations", headers=world.mallory, json={"email": "x@example.org"}
    )
    assert owners.status_code == 403
    for shared in (world.upload("eve"), world.profile("eve")):
        assert shared.status_code == 403
        assert shared.json()["detail"].startswith("sharing is paused")
    fred = world.tokens["fred"]
    accept = world.client.post(f"/api/v1/invites/{fred}/consent", json={"accept": True})
    assert accept.status_code == 403
    decline = world.client.post(f"/api/v1/invites/{fred}/consent", json={"accept": False})
    assert decline.status_code == 200

    # alice, the admin, is mailed, and sees the report and the frozen account.
    mail = _mail(world, "report", "alice@example.org")
    assert "Dana (dana@example.org)" in mail.text and "Mum (mallory@example.org)" in mail.text
    assert REASON in mail.text and "http://testserver/admin" in mail.text
    [report] = world.client.get("/api/v1/admin/reports", headers=world.alice).json()
    assert report["owner"]["email"] == "mallory@example.org" and report["owner"]["frozen"]
    assert (report["friend_email"], report["reason"], report["status"]) == (
        "dana@example.org",
        REASON,
        "open",
    )
    frozen = world.client.get("/api/v1/admin/frozen-owners", headers=world.alice).json()
    assert [o["email"] for o in frozen] == ["mallory@example.org"]
    statuses = {
        f["email"]: f["status"]
        for f in world.client.get("/api/v1/friends", headers=world.mallory).json()
    }
    assert statuses["dana@example.org"] == "reported"


def test_it_lets_the_admin_clear_a_frozen_owner(stalked: Stalked) -> None:
    world = stalked
    world.report("dana")
    cleared = world.client.post(
        f"/api/v1/admin/owners/{world.mallory_id}/clear", headers=world.alice
    )
    assert cleared.status_code == 200 and cleared.json()["frozen"] is False
    [report] = world.client.get("/api/v1/admin/reports", headers=world.alice).json()
    assert report["status"] == "cleared" and report["decided_at"]
    assert world.client.get("/api/v1/admin/frozen-owners", headers=world.alice).json() == []
    assert world.invite("Gina").status_code == 201
    assert world.upload("eve").status_code == 202
    assert world.client.get(f"/invite/{world.tokens['dana']}").status_code == 404  # still dead


def test_it_lets_the_admin_delete_a_frozen_owner(stalked: Stalked) -> None:
    world = stalked
    world.report("eve", "this is not their face")
    gone = world.client.delete(f"/api/v1/admin/owners/{world.mallory_id}", headers=world.alice)
    assert gone.status_code == 204
    assert world.client.get("/api/v1/me", headers=world.mallory).status_code == 401
    assert world.client.get(f"/invite/{world.tokens['fred']}").status_code == 404
    assert world.client.get("/api/v1/admin/reports", headers=world.alice).json() == []
    with Session(world.db) as session:
        assert session.exec(select(Report)).all() == []
        assert session.exec(select(Friend)).all() == []
    assert _mail(world, "report", "alice@example.org")  # the admin's own mail stays
    me = world.client.get("/api/v1/me", headers=world.alice).json()
    myself = world.client.delete(f"/api/v1/admin/owners/{me['id']}", headers=world.alice)
    assert myself.status_code == 403 and "account page" in myself.json()["detail"]
    nobody = world.client.delete(f"/api/v1/admin/owners/{world.mallory_id}", headers=world.alice)
    assert nobody.status_code == 404


def test_it_mails_nobody_when_the_instance_has_no_admin(stalked_sqlite: Stalked) -> None:
    world = stalked_sqlite
    assert world.client.delete("/api/v1/me", headers=world.alice).status_code == 204
    assert world.report("dana").status_code == 202
    assert world.client.get("/api/v1/me", headers=world.mallory).json()["frozen"] is True
    with Session(world.db) as session:
        assert session.exec(select(OutgoingMail).where(OutgoingMail.kind == "report")).all() == []
        assert len(session.exec(select(Report)).all()) == 1


# ---- the pages ----


def _browser(world: Stalked, email: str | None = None) -> TestClient:
    browser = TestClient(world.client.app, follow_redirects=False)
    if email:
        form = {"csrf_token": _csrf(browser), "email": email, "password": "correct horse battery"}
        answer = browser.post("/login", data=form)
        assert answer.status_code == 303
        browser.cookies.set("session", answer.cookies["session"])
    return browser


def test_it_lets_a_friend_report_from_the_invitation_page(stalked_sqlite: Stalked) -> None:
    world = stalked_sqlite
    fred, token = _browser(world), world.tokens["fred"]
    page = fred.get(f"/invite/{token}/report")
    assert _template(page) == "report.html"
    assert "Mum (mallory@example.org) invited you" in page.text
    assert f'action="/invite/{token}/report"' in page.text
    form = {"csrf_token": _context(page)["csrf_token"], "reason": "not_their_face"}
    done = fred.post(f"/invite/{token}/report", data=form | {"details": "that is my aunt"})
    assert done.status_code == 202 and _context(done)["done"] is True
    assert "Thank you for telling us" in done.text
    assert fred.get(f"/invite/{token}", headers={"Accept": "text/html"}).status_code == 404
    [report] = world.client.get("/api/v1/admin/reports", headers=world.alice).json()
    assert report["reason"] == "This is not their face: that is my aunt"


def test_it_shows_the_frozen_owner_and_the_paused_friend_why(stalked_sqlite: Stalked) -> None:
    world = stalked_sqlite
    world.report("dana")
    mallory = _browser(world, "mallory@example.org")
    home = mallory.get("/")
    assert "Your account is on hold." in home.text and 'action="/friends"' not in home.text
    form = {"csrf_token": _csrf(mallory, "/"), "name": "Gina", "email": "gina@example.org"}
    refused = mallory.post("/friends", data=form)
    assert refused.status_code == 403 and "Your account is on hold" in refused.text
    eve, token = _browser(world), world.tokens["eve"]
    share = eve.get(f"/invite/{token}/share")
    assert "Sharing is paused" in share.text
    form = {"csrf_token": _csrf(eve, f"/invite/{token}/share"), "url": "https://example.org/@e"}
    assert eve.post(f"/invite/{token}/profiles", data=form).status_code == 403
    assert "This invitation is paused" in eve.get(f"/invite/{world.tokens['fred']}").text


def test_it_lets_the_admin_clear_or_delete_from_the_admin_page(stalked_sqlite: Stalked) -> None:
    world = stalked_sqlite
    world.report("dana")
    alice = _browser(world, "alice@example.org")
    assert "1 report waits for you." in alice.get("/").text
    page = alice.get("/admin")
    assert _template(page) == "admin.html"
    assert [o.email for o in _context(page)["frozen"]] == ["mallory@example.org"]
    [(report, owner)] = _context(page)["reports"]
    assert (report.reason, owner.email) == (REASON, "mallory@example.org")
    assert "my mum died in 2019" in page.text and "dana@example.org" in page.text
    clear = f"/admin/owners/{world.mallory_id}/clear"
    assert f'action="{clear}"' in page.text
    answer = alice.post(clear, data={"csrf_token": _context(page)["csrf_token"]})
    assert answer.status_code == 303
    after = alice.get("/admin")
    assert "Mum (mallory@example.org) may invite again." in after.text
    assert _context(after)["frozen"] == []
    assert world.invite("Gina").status_code == 201

    world.report("eve")
    delete = f"/admin/owners/{world.mallory_id}/delete"
    answer = alice.post(delete, data={"csrf_token": _csrf(alice, "/admin")})
    assert answer.status_code == 303
    assert "The account of Mum (mallory@example.org)" in alice.get("/admin").text
    assert world.client.get("/api/v1/me", headers=world.mallory).status_code == 401
