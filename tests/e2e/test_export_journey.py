"""The friend's way to a download in a real browser, on a desktop and a phone: the guide of each
platform folded on the share page, "remind me in 2 days", and what happens next once the scan
ends. Screenshots go on in test-artifacts/screenshots/ from 80."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.e2e import test_journey as first_journey
from tests.e2e.test_circle_journey import _owner
from tests.e2e.test_journey import DESKTOP, PHONE, Camera, Server
from tests.pages_support import OBAMA, build_export, face_photo

pytestmark = pytest.mark.slow

server = first_journey.server
browser = first_journey.browser

FIRST_SHOT = 80  # the other journeys take 01 to 79


@pytest.fixture(scope="module")
def share_page(server: Server) -> str:
    """Alice enrolls and invites Dana, who accepts: Dana's share page."""
    with httpx.Client(base_url=server.url, timeout=30) as api:
        alice = _owner(api, server, "alice@example.org", "Alice", None)
        photo = face_photo(OBAMA).read_bytes()
        api.post("/api/v1/reference-photos", headers=alice, files={"file": ("a.jpg", photo)})
        friend = api.post(
            "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
        ).json()
        token = friend["invite_url"].rsplit("/", 1)[1]
        assert api.post(f"/api/v1/invites/{token}/consent", json={"accept": True}).is_success
    return f"{server.url}/invite/{token}/share"


@pytest.fixture(scope="module")
def page(browser: Browser) -> Page:
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.set_default_timeout(15_000)
    return page


def test_the_friend_opens_the_steps_of_their_platform(page: Page, share_page: str) -> None:
    camera = Camera(first=FIRST_SHOT)
    page.goto(share_page)
    guide = page.locator("#guide-facebook")
    steps = guide.get_by_text("Media quality “High”")
    expect(steps).to_be_hidden()  # folded: the list of platforms fits on a phone
    camera.shoot_phone(page, "share-guides-folded")
    guide.get_by_text("Facebook", exact=True).click()
    expect(steps).to_be_visible()
    link = guide.get_by_role("link", name="Open “Download your information” for Facebook")
    expect(link).to_have_attribute(
        "href", "https://accountscenter.facebook.com/info_and_permissions/dyi"
    )
    camera.shoot(page, "share-guide-facebook")
    page.locator("#guide-folder summary").click()
    expect(page.locator("#guide-folder").get_by_text("“Compress”").first).to_be_visible()
    camera.shoot_phone(page, "share-guide-phone-folder")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_guide_open_has_no_axe_violation(
    page: Page, share_page: str, viewport: object
) -> None:
    page.set_viewport_size(viewport)  # type: ignore[arg-type]
    page.goto(share_page)
    page.evaluate("document.querySelectorAll('details.export-guide').forEach(d => d.open = true)")
    violations = Axe().run(page).response["violations"]
    assert [f"{v['id']}: {v['help']}" for v in violations] == []
    page.set_viewport_size(DESKTOP)


def test_the_friend_asks_to_be_reminded(page: Page, share_page: str) -> None:
    camera = Camera(first=FIRST_SHOT + 3)
    page.goto(share_page)
    expect(page.get_by_text("without a visit or a mail from us")).to_be_visible()
    page.get_by_role("button", name="I’ve asked for it — remind me in 2 days").click()
    expect(
        page.get_by_role("status").filter(has_text="We will e-mail you this link on")
    ).to_be_visible()
    expect(
        page.get_by_role("button", name="I’ve asked for it — remind me in 2 days")
    ).to_have_count(0)
    camera.shoot_phone(page, "share-reminder-asked")


def test_the_friend_learns_what_happens_after_the_scan(
    page: Page, share_page: str, tmp_path: Path
) -> None:
    camera = Camera(first=FIRST_SHOT + 4)
    page.goto(share_page)
    next_steps = page.get_by_text("What happens next:")
    expect(next_steps).to_be_hidden()
    page.locator('#upload-form input[type="file"]').set_input_files(build_export(tmp_path))
    page.locator('#upload-form button[type="submit"]').click()
    # The page follows the scan by itself; the words come the moment it ends, with no reload.
    expect(next_steps).to_be_visible(timeout=180_000)
    expect(page.locator(".after-scan")).to_contain_text("Alice looks at the photos we found")
    camera.shoot_phone(page, "share-after-scan")
