"""axe-core in the browser, 0 violations on a desktop and a phone: every kind of mail in each of
its branches, the pages anyone can open, and every page of an owner (logged in) and of their
friend (through the link). axe-core's script comes inside the axe-playwright-python wheel, so
nothing is fetched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from tests.e2e import test_journey as first_journey
from tests.e2e.test_circle_journey import PASSWORD, _owner
from tests.e2e.test_journey import DESKTOP, PHONE, Server
from tests.notify.test_mail_templates import _cases, _rendered
from tests.pages_support import face_photo

pytestmark = pytest.mark.slow

server = first_journey.server
browser = first_journey.browser

AXE = Axe()


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
