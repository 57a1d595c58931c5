"""The review at scale in a real browser: alice opens a friend with 320 matches in five look-alike
groups and twenty older ones with no group, and decides them by keyboard without the page ever
reloading: focus follows each decision to the next card still waiting, a live region says what
happened, and the last decision is undone with U. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

# Importing the first journey skips this module as it skips itself (no browser, outside CI).
from tests.e2e import test_journey as first_journey
from tests.e2e.test_journey import DESKTOP, PHONE, Camera, Server, serve
from tests.review_world import PASSWORD, ReviewWorld, build

pytestmark = pytest.mark.slow

browser = first_journey.browser
FIRST_SHOT = 40  # the first journeys take 01 to 39
TOUCH_TARGET = 44
DECISIONS = 20


def _served(
    tmp_path_factory: pytest.TempPathFactory, name: str, **world: int
) -> Iterator[tuple[Server, ReviewWorld]]:
    from service.config import Settings

    data_dir = tmp_path_factory.mktemp(name)
    built = build(Settings(data_dir=data_dir, base_url="http://127.0.0.1"), **world)
    with serve(data_dir) as server:
        yield server, built


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ReviewWorld]]:
    yield from _served(tmp_path_factory, "review", matches=320, groups=5, ungrouped=20)


def _log_in(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("E-mail address").fill("alice@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Hello, Alice")).to_be_visible()


def _focused_id(page: Page) -> str:
    found: str = page.evaluate("document.activeElement && document.activeElement.id")
    return found


def _waiting_ids(page: Page) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "[data-review-card][data-pending=true]", "cards => cards.map(c => c.id)"
    )
    return ids


def _decide_by_keyboard(page: Page, camera: Camera) -> None:
    """J goes to the first card; then Y or N decides it and focus moves to the next waiting."""
    status = page.locator("[data-review-status]")
    page.keyboard.press("j")
    expect(page.locator("[data-review-card]").first).to_be_focused()
    for n in range(DECISIONS):
        waiting = _waiting_ids(page)
        here = _focused_id(page)
        assert here == waiting[0], (n, here, waiting[:3])
        page.keyboard.press("y" if n % 3 == 0 else "n")
        expect(page.locator(f"#{waiting[1]}")).to_be_focused()
        expect(status).to_contain_text("confirmed as you" if n % 3 == 0 else "marked “not me”")
        if n == 0:
            camera.shoot(page, "review-first-decision")
    assert len(_waiting_ids(page)) == len(waiting) - 1


def _undo_by_keyboard(page: Page) -> None:
    before = _focused_id(page)
    decided = page.locator("[data-review-card][data-pending=false]").last.get_attribute("id")
    page.keyboard.press("u")
    expect(page.locator("[data-review-status]")).to_contain_text("Undone")
    expect(page.locator(f"#{decided}")).to_have_attribute("data-pending", "true")
    expect(page.locator(f"#{decided}")).to_be_focused()
    assert decided != before


def _group_decision_and_change(page: Page, world: ReviewWorld, camera: Camera) -> None:
    """The owner's group, confirmed by keyboard, is changed to "not me" and back with the mouse."""
    owners = world.group_ids[0]
    photos = f"{len(world.match_ids[owners])} photos"
    card = page.locator(f"#group-{owners}")
    expect(card).to_have_class("review-card group-card group-card--confirmed")
    expect(card).to_contain_text(f"One face in {photos}:")
    card.get_by_role("button", name="Change").click()
    expect(card).to_have_attribute("data-pending", "true")
    expect(card.get_by_role("button", name="This is me")).to_be_visible()
    expect(page.locator("[data-review-status]")).to_contain_text(f"Undone: {photos}")
    card.get_by_role("button", name="Not me").click()
    expect(card).to_have_class("review-card group-card group-card--rejected")
    expect(page.locator("[data-review-status]")).to_contain_text(f"{photos} marked “not me”")
    page.get_by_role("button", name="Undo").click()
    expect(card).to_have_attribute("data-pending", "true")
    camera.shoot(page, "review-group-undone")


def _large_faces(page: Page) -> None:
    face = page.locator(".group-card--pending .face-pair img").first
    expect(face).to_have_js_property("complete", True)
    assert face.evaluate("img => img.naturalHeight") >= 160
    box = face.bounding_box()
    assert box is not None and box["height"] >= 160, box


def _fits_the_phone(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width} px wide"
    for button in page.locator(".group-card .review-actions button").all()[:6]:
        box = button.bounding_box()
        assert box is not None and box["height"] >= TOUCH_TARGET, box
    for face in page.locator(".group-card--pending .face-pair img").all()[:2]:
        box = face.bounding_box()
        assert box is not None and box["height"] >= 160, box


@pytest.mark.timeout(180)
def test_it_reviews_hundreds_of_matches_by_keyboard_without_reloading(
    review: tuple[Server, ReviewWorld], browser: Browser
) -> None:
    server, world = review
    camera = Camera(first=FIRST_SHOT)
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.set_default_timeout(15_000)
    _log_in(page, server)
    page.goto(f"{server.url}/friends/{world.friend_ids[0]}")
    expect(page.locator(".group-card")).to_have_count(5)
    expect(page.get_by_text("Keys:")).to_be_visible()
    _large_faces(page)
    camera.shoot(page, "review-groups")
    camera.shoot_phone(page, "review-groups")

    page.evaluate("window.stillTheSamePage = true")
    loads: list[str] = []
    page.on("load", lambda loaded: loads.append(loaded.url))
    _decide_by_keyboard(page, camera)
    _undo_by_keyboard(page)
    _group_decision_and_change(page, world, camera)
    assert page.evaluate("window.stillTheSamePage") is True
    assert loads == []

    page.set_viewport_size(PHONE)
    _fits_the_phone(page)
    page.set_viewport_size(DESKTOP)
    camera.shoot(page, "review-decided")
    camera.shoot_phone(page, "review-decided")

    # The decisions were saved: a fresh load shows them.
    page.reload()
    expect(page.locator(".group-card--rejected, .group-card--confirmed")).to_have_count(4)
    expect(page.locator("[data-review-card][data-pending=false]")).to_have_count(4 + 14)
    page.locator(f"#group-{world.group_ids[0]}").focus()
    page.keyboard.press("o")
    expect(page.get_by_role("heading", level=1)).to_contain_text("One face in")
    expect(page.locator(".match-card")).to_have_count(50)
    camera.shoot(page, "review-group-page")
    camera.shoot_phone(page, "review-group-page")


@pytest.fixture(scope="module")
def second_faces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ReviewWorld]]:
    yield from _served(
        tmp_path_factory, "second-faces", matches=4, groups=0, ungrouped=4, waiting=1
    )


@pytest.mark.timeout(120)
def test_not_me_brings_the_photos_other_face_in_and_undo_takes_it_away(
    second_faces: tuple[Server, ReviewWorld], browser: Browser
) -> None:
    """A second face of the photo waits behind the first card: "not me" brings its card in right
    after, with focus on it, and U takes it away again, all without a reload."""
    server, world = second_faces
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.set_default_timeout(15_000)
    _log_in(page, server)
    page.goto(f"{server.url}/friends/{world.friend_ids[0]}")
    cards = page.locator("[data-review-card]")
    expect(cards).to_have_count(4)
    page.evaluate("window.stillTheSamePage = true")
    front = f"match-{world.match_ids[0][0]}"  # the match the second face waits behind
    page.locator(f"#{front}").focus()
    page.keyboard.press("n")
    status = page.locator("[data-review-status]")
    expect(status).to_contain_text("Another face in this photo looks like you")
    expect(cards).to_have_count(5)
    second = page.locator(f"#{front} + [data-review-card]")
    expect(second).to_be_focused()
    expect(second).to_have_attribute("data-pending", "true")
    added = second.get_attribute("id")
    assert added not in (front, None)

    page.keyboard.press("u")
    expect(status).to_contain_text("Undone")
    expect(cards).to_have_count(4)
    expect(page.locator(f"#{added}")).to_have_count(0)
    expect(page.locator(f"#{front}")).to_have_attribute("data-pending", "true")
    assert page.evaluate("window.stillTheSamePage") is True
