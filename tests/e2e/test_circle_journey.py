"""Tess, the aunt, on her phone: alice and ben (cousins in one family circle) both ask her; she
answers both on one page, uploads once, and later gets one list naming whose photo each item is.
The owners' side is driven through the JSON API; tess's through a real browser against the real
server. Screenshots go on in test-artifacts/screenshots/ from 60."""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e import test_journey as first_journey
from tests.e2e.test_journey import PHONE, Camera, Server
from tests.pages_support import FAMILY_EXPORT, build_export, face_photo

pytestmark = pytest.mark.slow

server = first_journey.server
browser = first_journey.browser

FIRST_SHOT = 60  # the other journeys take 01 to 59
PASSWORD = "correct horse battery"


def _mailed_link(server: Server, to: str, path: str) -> str:
    """The newest link to `path` in a mail to `to` in the outbox, as from an inbox."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = []
        for mail_file in sorted((server.data_dir / "outbox").glob("*.eml"), key=_mtime):
            mail = message_from_bytes(mail_file.read_bytes(), policy=policy.default)
            body = mail.get_body(("plain",))
            text = body.get_content() if body is not None else ""  # type: ignore[attr-defined]
            link = re.search(rf"https?://\S+/{path}\S+", text)
            if mail["To"] == to and link:
                found.append(link.group(0))
        if found:
            return found[-1]
        time.sleep(0.2)
    pytest.fail(f"no /{path} link mailed to {to} within 30 s")


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def _owner(api: httpx.Client, server: Server, email: str, name: str, invitation: str | None):  # type: ignore[no-untyped-def]
    body = {"email": email, "password": PASSWORD, "name": name}
    if invitation:
        body["invitation"] = invitation
    assert api.post("/api/v1/auth/register", json=body).status_code == 201
    if invitation is None:  # an owner invitation was mailed to the address: it is confirmed
        confirm = _mailed_link(server, email, "confirm/").rsplit("/", 1)[1]
        assert api.post("/api/v1/auth/confirm", json={"token": confirm}).status_code == 200
    token = api.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _family(api: httpx.Client, server: Server) -> tuple[dict[str, str], dict[str, str], str]:
    """Alice (the instance's first account) brings ben in, both enroll, form a circle, and both
    invite tess. Returns their headers and tess's link from alice."""
    alice = _owner(api, server, "alice@example.org", "Alice", None)
    api.post("/api/v1/owner-invitations", headers=alice, json={"email": "ben@example.org"})
    invitation = _mailed_link(server, "ben@example.org", "signup").rsplit("=", 1)[1]
    ben = _owner(api, server, "ben@example.org", "Ben", invitation)
    for who, photo in ((alice, "dev/obama/obama.jpg"), (ben, "dev/biden/biden.jpg")):
        data = face_photo(Path(photo)).read_bytes()
        upload = api.post("/api/v1/reference-photos", headers=who, files={"file": ("r.jpg", data)})
        assert upload.status_code == 201, upload.text
    circle = api.post("/api/v1/circles", headers=alice, json={"name": "The Smiths"}).json()
    api.post(
        f"/api/v1/circles/{circle['id']}/members", headers=alice, json={"email": "ben@example.org"}
    )
    join = _mailed_link(server, "ben@example.org", "circles/join/").rsplit("/", 1)[1]
    assert api.post("/api/v1/circles/join", headers=ben, json={"token": join}).status_code == 200
    tess = {"name": "Tess", "email": "tess@example.org"}
    links = [api.post("/api/v1/friends", headers=who, json=tess).json() for who in (alice, ben)]
    return alice, ben, links[0]["invite_url"]


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width} px wide"


def _confirm_and_send(api: httpx.Client, who: dict[str, str]) -> None:
    [friend] = api.get("/api/v1/friends", headers=who).json()
    review = api.post(
        f"/api/v1/friends/{friend['id']}/matches/review",
        headers=who,
        json={"decision": "confirmed"},
    )
    assert review.status_code == 200 and review.json(), review.text
    sent = api.post(f"/api/v1/friends/{friend['id']}/checklist/send", headers=who)
    assert sent.status_code == 202, sent.text


def test_tess_helps_two_cousins_on_one_page_with_one_upload_and_one_list(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    camera = Camera(first=FIRST_SHOT)
    with httpx.Client(base_url=server.url, timeout=30) as api:
        alice, ben, invite_url = _family(api, server)
        tess = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
        tess.set_default_timeout(15_000)
        tess.goto(invite_url)
        expect(tess.get_by_role("heading", level=1)).to_have_text("Alice and Ben ask for your help")
        for name in ("Alice", "Ben"):
            expect(
                tess.get_by_role("img", name=f"{name}’s face, reference photo 1")
            ).to_be_visible()
            expect(tess.get_by_role("checkbox", name=re.compile(name))).to_be_checked()
        _no_sideways_scroll(tess)
        camera.shoot(tess, "circle-invite-phone")
        tess.get_by_role("button", name="Help those ticked").click()
        expect(tess.get_by_role("heading", level=1)).to_have_text("Share your photos")
        export = build_export(
            tmp_path,
            FAMILY_EXPORT,
        )
        tess.get_by_label("Your download (ZIP or TAR file)").set_input_files(export)
        tess.get_by_role("button", name="Upload").click()
        done = tess.locator(".scan--done")
        expect(done).to_be_visible(timeout=90_000)
        expect(tess.locator(".scan")).to_have_count(1)  # one scan for both
        camera.shoot(tess, "circle-share-done-phone")
        for who in (alice, ben):
            _confirm_and_send(api, who)
        checklist_url = _mailed_link(server, "tess@example.org", "checklist/")
        tess.goto(checklist_url)
        expect(tess.get_by_role("heading", level=1)).to_have_text(
            "Photos Alice and Ben would like taken down"
        )
        items = tess.locator(".checklist-item")
        expect(items).to_have_count(3)  # the photo of both is one item
        shared = items.filter(has_text="Alice and Ben")
        expect(shared).to_have_count(1)
        _no_sideways_scroll(tess)
        camera.shoot(tess, "circle-checklist-phone")
        shared.get_by_role("button", name="I removed it").click()
        expect(tess.locator(".checklist-item").filter(has_text="Alice and Ben")).to_contain_text(
            "Your answer"
        )
        camera.shoot(tess, "circle-checklist-answered-phone")
        for who in (alice, ben):
            [friend] = api.get("/api/v1/friends", headers=who).json()
            matches = api.get(f"/api/v1/friends/{friend['id']}/matches", headers=who).json()
            statuses = {m["photo"]: m["status"] for m in matches}
            assert statuses["p/both.jpg"] == "removed" and len(statuses) == 2
