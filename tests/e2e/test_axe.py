"""axe-core in the browser, 0 violations on a desktop and a phone: every kind of mail in each of
its branches, the pages anyone can open, every page of an owner (logged in) and of their friend
(through the link), the review full of matches, the pages only a step reaches (joining a circle,
a confirmed address, a report sent, the admin's) and every owner's form sent back with an error.
Those are also screenshot, desktop and phone, in test-artifacts/screenshots/ from 100. axe-core's
script comes inside the axe-playwright-python wheel, so nothing is fetched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from sqlmodel import Session

from tests.e2e import test_journey as first_journey
from tests.e2e.test_circle_journey import PASSWORD, _mailed_link, _owner
from tests.e2e.test_journey import DESKTOP, PHONE, SHOTS, Camera, Server, serve
from tests.notify.test_mail_templates import _cases, _rendered
from tests.pages_support import face_photo
from tests.review_world import ReviewWorld, build

pytestmark = pytest.mark.slow

server = first_journey.server
browser = first_journey.browser

AXE = Axe()
FIRST_SHOT = 100  # the journeys take 01 to 99


def _violations(page: Page) -> list[str]:
    results = AXE.run(page)
    return [f"{v['id']}: {v['help']}" for v in results.response["violations"]]


@pytest.fixture(scope="module")
def page(browser: Browser) -> Page:
    return browser.new_context(viewport=DESKTOP).new_page()


@pytest.mark.parametrize(("kind", "overrides"), _cases())
def test_each_mail_has_no_axe_violation(page: Page, kind: str, overrides: dict[str, Any]) -> None:
    page.set_content(_rendered(kind, overrides).html)
    assert _violations(page) == []


@pytest.mark.parametrize("path", ["/", "/login", "/signup", "/invite/not-a-real-link"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_each_open_page_has_no_axe_violation(
    page: Page, server: Server, path: str, viewport: Any
) -> None:
    page.set_viewport_size(viewport)
    page.goto(server.url + path)
    assert _violations(page) == []


@pytest.fixture(scope="module")
def pages_of_alice(server: Server, browser: Browser) -> tuple[Page, list[str]]:
    """Alice (the instance's first account, so its admin) logged in, with a friend who accepted;
    the paths of her pages and of her friend's."""
    with httpx.Client(base_url=server.url, timeout=30) as api:
        alice = _owner(api, server, "axe@example.org", "Alice", None)
        photo = face_photo(Path("dev/obama/obama.jpg")).read_bytes()
        api.post("/api/v1/reference-photos", headers=alice, files={"file": ("a.jpg", photo)})
        friend = api.post(
            "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
        ).json()
        token = friend["invite_url"].rsplit("/", 1)[1]
        api.post(f"/api/v1/invites/{token}/consent", json={"accept": True})
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(server.url + "/login")
    page.get_by_label("E-mail address").fill("axe@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url + "/")
    paths = ["/", "/account", "/circle", "/admin", f"/friends/{friend['id']}"]
    paths += [f"/invite/{token}", f"/invite/{token}/share", f"/invite/{token}/report"]
    paths += [f"/checklist/{token}", f"/unsubscribe/{token}"]
    return page, paths


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_each_page_of_an_owner_and_a_friend_has_no_axe_violation(
    pages_of_alice: tuple[Page, list[str]], server: Server, viewport: Any
) -> None:
    page, paths = pages_of_alice
    page.set_viewport_size(viewport)
    found = {}
    for path in paths:
        page.goto(server.url + path)
        found[path] = _violations(page)
    assert found == {path: [] for path in paths}


# ---- the review full of matches, the pages a step reaches, the forms sent back ----------------


@dataclass
class Crowd:
    """A review world served: alice (the admin) with a friend of 50 matches, in a circle to which
    she invited bob (another owner), whose friend dana holds a link; carol, who has not
    confirmed her address; and erin, invited by alice to open an account."""

    server: Server
    world: ReviewWorld
    bob_join: str
    dana_link: str
    erin_signup: str


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crowd]:
    from service import accounts
    from service.app import build_services
    from service.config import Settings

    data_dir = tmp_path_factory.mktemp("crowd")
    settings = Settings(data_dir=data_dir, base_url="http://127.0.0.1")
    world = build(settings, matches=50, groups=3, ungrouped=10)
    services = build_services(settings)
    with Session(services.db) as session:
        accounts.register(session, "carol@example.org", PASSWORD, "Carol")
        session.commit()
    services.db.dispose()
    with serve(data_dir) as server, httpx.Client(base_url=server.url, timeout=30) as api:
        token = api.post(
            "/api/v1/auth/token", json={"email": "alice@example.org", "password": PASSWORD}
        )
        alice = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for email in ("bob@example.org", "erin@example.org"):
            sent = api.post("/api/v1/owner-invitations", headers=alice, json={"email": email})
            assert sent.status_code == 202, sent.text
        invitation = _mailed_link(server, "bob@example.org", "signup").rsplit("=", 1)[1]
        bob = _owner(api, server, "bob@example.org", "Bob", invitation)
        circle = api.post("/api/v1/circles", headers=alice, json={"name": "The Smiths"}).json()
        members = f"/api/v1/circles/{circle['id']}/members"
        api.post(members, headers=alice, json={"email": "bob@example.org"})
        dana = {"name": "Dana", "email": "dana@example.org"}
        link = api.post("/api/v1/friends", headers=bob, json=dana).json()["invite_url"]
        yield Crowd(
            server,
            world,
            bob_join=_mailed_link(server, "bob@example.org", "circles/join/"),
            dana_link=link,
            erin_signup=_mailed_link(server, "erin@example.org", "signup"),
        )


@pytest.fixture(scope="module")
def camera() -> Camera:
    return Camera(first=FIRST_SHOT)


def _logged_in(browser: Browser, server: Server, email: str) -> Page:
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.set_default_timeout(15_000)
    page.goto(server.url + "/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url + "/")
    return page


def _checked(page: Page, camera: Camera, name: str) -> dict[str, list[str]]:
    """axe on the page as it stands at a desktop's size, then at a phone's, and a screenshot
    at each (a page a form answered is not loaded again: that would send the form again)."""
    found = {}
    for viewport, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        page.set_viewport_size(viewport)
        found[name + suffix] = _violations(page)
        camera.shoot(page, name + suffix)
    page.set_viewport_size(DESKTOP)
    return found


def _none(found: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: [] for name in found}


def test_the_review_full_of_matches_has_no_axe_violation(
    crowd: Crowd, browser: Browser, camera: Camera
) -> None:
    alice = _logged_in(browser, crowd.server, "alice@example.org")
    friend = f"{crowd.server.url}/friends/{crowd.world.friend_ids[0]}"
    alice.goto(friend)
    expect(alice.locator("[data-review-card]").first).to_be_visible()
    found = _checked(alice, camera, "axe-review")
    alice.goto(f"{friend}/groups/{crowd.world.group_ids[0]}")
    expect(alice.locator(".match-card").first).to_be_visible()
    found |= _checked(alice, camera, "axe-review-group")
    # Without the script's own question, "not me" for all the rest asks on a page of its own
    # (axe itself is a script: in a page without JavaScript it cannot run).
    alice.goto(friend)
    rest = alice.get_by_role("button", name="“Not me” for all the rest…")
    rest.evaluate("button => button.form.removeAttribute('data-confirm')")
    rest.click()
    alice.wait_for_url("**/review-all")
    found |= _checked(alice, camera, "axe-review-all-confirm")
    assert found == _none(found)


def test_the_pages_a_step_reaches_have_no_axe_violation(
    crowd: Crowd, browser: Browser, camera: Camera
) -> None:
    bob = _logged_in(browser, crowd.server, "bob@example.org")
    bob.goto(crowd.bob_join)
    expect(bob.get_by_role("button", name="Join “The Smiths”")).to_be_visible()
    found = _checked(bob, camera, "axe-circle-join")

    carol = _logged_in(browser, crowd.server, "carol@example.org")
    carol.get_by_role("button", name="Send the link again").click()
    carol.goto(_mailed_link(crowd.server, "carol@example.org", "confirm/"))
    expect(carol.get_by_role("heading", level=1)).to_have_text("Thank you, Carol")
    found |= _checked(carol, camera, "axe-confirmed")

    dana = browser.new_context(viewport=DESKTOP).new_page()
    dana.goto(crowd.dana_link + "/report")
    dana.get_by_label("This is not their face").check()
    dana.get_by_role("button", name="Report this invitation").click()
    expect(dana.get_by_role("heading", level=1)).to_have_text("Thank you for telling us")
    found |= _checked(dana, camera, "axe-report-sent")

    alice = _logged_in(browser, crowd.server, "alice@example.org")
    alice.goto(crowd.server.url + "/admin")
    expect(alice.locator("li", has_text="(bob@example.org), on hold since")).to_be_visible()
    found |= _checked(alice, camera, "axe-admin-report")
    assert found == _none(found)


def _sent_back(page: Page, field: str) -> None:
    """The form came back: its message under the field, which has the focus."""
    expect(page.locator(f"#{field}-error")).to_be_visible()
    expect(page.locator(f"#{field}")).to_be_focused()


def test_the_forms_sent_back_with_an_error_have_no_axe_violation(
    crowd: Crowd, browser: Browser, camera: Camera
) -> None:
    alice = _logged_in(browser, crowd.server, "alice@example.org")
    alice.get_by_label("Their name").fill("Gina")
    alice.get_by_label("Their e-mail address").fill("gina@example")  # no dot: not an address
    alice.get_by_role("button", name="Send invitation").click()
    _sent_back(alice, "friend-email")
    found = _checked(alice, camera, "axe-error-invite")

    alice.goto(crowd.server.url + "/")
    alice.get_by_label("The e-mail address to invite").fill("bob@example.org")
    alice.get_by_role("button", name="Send an invitation to open an account").click()
    _sent_back(alice, "owner-email")
    found |= _checked(alice, camera, "axe-error-owner-invitation")

    alice.goto(crowd.server.url + "/")
    photos = [{"name": f"{n}.jpg", "mimeType": "image/jpeg", "buffer": b"x"} for n in range(6)]
    alice.get_by_label("Add photos of your face (up to 5 at once)").set_input_files(photos)  # type: ignore[arg-type]
    alice.get_by_role("button", name="Add the photos").click()
    _sent_back(alice, "reference-file")
    found |= _checked(alice, camera, "axe-error-reference-photos")

    alice.goto(crowd.server.url + "/circle")
    alice.get_by_label("Their e-mail address").fill("ben@example")
    alice.get_by_role("button", name="Send the invitation").click()
    _sent_back(alice, "member-email")
    found |= _checked(alice, camera, "axe-error-circle-invite")

    erin = browser.new_context(viewport=DESKTOP).new_page()
    erin.goto(crowd.erin_signup)
    erin.get_by_label("Your name").fill("   ")
    erin.get_by_label("Password").fill(PASSWORD)
    erin.get_by_role("button", name="Create account").click()
    _sent_back(erin, "name")
    expect(erin.get_by_label("E-mail address")).to_have_value("erin@example.org")
    found |= _checked(erin, camera, "axe-error-signup")
    erin.get_by_label("Your name").fill("Erin")
    erin.get_by_label("Password").fill(PASSWORD)
    erin.get_by_role("button", name="Create account").click()
    erin.wait_for_url(crowd.server.url + "/")
    erin.goto(crowd.server.url + "/circle")
    erin.get_by_label("Its name").fill("   ")
    erin.get_by_role("button", name="Start the circle").click()
    _sent_back(erin, "circle-name")
    found |= _checked(erin, camera, "axe-error-circle-name")

    stranger = browser.new_context(viewport=DESKTOP).new_page()
    stranger.goto(crowd.server.url + "/login")
    stranger.get_by_label("E-mail address").fill("alice@example.org")
    stranger.get_by_label("Password").fill("not her password")
    stranger.get_by_role("button", name="Log in").click()
    _sent_back(stranger, "password")
    expect(stranger.get_by_label("E-mail address")).to_have_value("alice@example.org")
    found |= _checked(stranger, camera, "axe-error-login")
    assert found == _none(found)


def test_it_puts_the_focus_on_the_wrong_field_in_view_after_a_failed_invite_on_a_phone(
    crowd: Crowd, browser: Browser, camera: Camera
) -> None:
    alice = _logged_in(browser, crowd.server, "alice@example.org")
    alice.set_viewport_size(PHONE)
    alice.get_by_label("Their name").fill("Gina")
    alice.get_by_label("Their e-mail address").fill("gina@example")
    alice.get_by_role("button", name="Send invitation").click()
    expect(alice.locator("#friend-email")).to_be_focused()
    for shown in ("#friend-email", "#friend-email-error", "label[for=friend-email]"):
        expect(alice.locator(shown)).to_be_in_viewport(ratio=1)  # once it has scrolled there
    expect(alice.get_by_label("Their name")).to_have_value("Gina")
    expect(alice.get_by_label("Their e-mail address")).to_have_value("gina@example")
    camera.count += 1  # what the phone's screen shows, not the whole page
    alice.screenshot(path=SHOTS / f"{camera.count:02d}-invite-error-phone-screen.png")
