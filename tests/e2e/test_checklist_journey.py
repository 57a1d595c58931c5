"""The journey after the review, in a real browser against the real server: alice confirms the
photos and sends bob his checklist; bob opens the link from the mail on his phone, follows the
steps and answers; alice sees the answers; bob stops the reminders from the mail's unsubscribe
link. Screenshots continue the first journey's numbering in test-artifacts/screenshots/."""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

# Importing the first journey skips this module as it skips itself: without /usr/bin/chromium,
# unless in CI (where a missing browser must fail).
from tests.e2e import test_journey as first_journey
from tests.e2e.test_journey import (
    DESKTOP,
    PHONE,
    Camera,
    Server,
    _accept_and_share,
    _invite_bob,
    _new_page,
    _sign_up_and_enroll,
)
from tests.pages_support import build_export

pytestmark = pytest.mark.slow

# Its fixtures, for this module's own server and browser (pytest finds them by these names).
server = first_journey.server
browser = first_journey.browser

FIRST_SHOT = 20  # the first journey takes 01 to 19
TOUCH_TARGET = 44  # px: the smallest comfortable tap target (WCAG 2.5.5, Apple's HIG)


class Offstage(Camera):
    """The first journey's steps again, to reach the review, without its screenshots."""

    def shoot(self, page: Page, name: str) -> None:
        pass

    def shoot_phone(self, page: Page, name: str) -> None:
        pass


def _checklist_mail(outbox: Path) -> EmailMessage:
    """The checklist mail, once the job queue has written it to the outbox."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")):
            mail = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(mail, EmailMessage)
            if "/checklist/" in _text_of(mail):
                return mail
        time.sleep(0.3)
    pytest.fail(f"no checklist mail in {outbox} within 30 s")


def _text_of(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _link(text: str, server: Server, page: str) -> str:
    found = re.search(rf"{re.escape(server.url)}/{page}/[A-Za-z0-9_-]+", text)
    assert found, f"no /{page}/ link in {text!r}"
    return found.group(0)


def _review_in_bulk(alice: Page, camera: Camera) -> None:
    alice.reload()
    cards = alice.locator("[data-review-card]")  # a card per look-alike group (or photo)
    expect(cards.first).to_be_visible()
    expect(alice.get_by_role("button", name="Send the checklist")).to_be_disabled()
    alice.get_by_role("button", name="Confirm all strong matches").click()
    for card in cards.all():
        expect(card).to_contain_text("Confirmed: this is you")
    expect(alice.get_by_role("button", name="Confirm all strong matches")).to_have_count(0)
    panel = alice.locator("section", has=alice.locator("#checklist"))
    expect(panel).to_contain_text("0 of 2 items answered.")
    camera.shoot(alice, "friend-review-bulk")


def _send_checklist(alice: Page, camera: Camera) -> None:
    alice.get_by_role("button", name="Send the checklist").click()
    sent = "The checklist is on its way to bob@example.org."
    expect(alice.get_by_role("status")).to_have_text(sent)
    panel = alice.locator("section", has=alice.locator("#checklist"))
    expect(panel).to_contain_text("Sent on")
    expect(panel).to_contain_text("Next gentle reminder:")
    expect(alice.get_by_role("button", name="Send the checklist again")).to_be_visible()
    camera.shoot(alice, "checklist-sent")


def _fits_the_phone(page: Page) -> None:
    """Nothing wider than the screen, every photo loaded and not filling it, every answer
    button and "How to take it down" easy to tap."""
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], f"the page scrolls sideways: {overflow} px wide"
    for picture in page.locator(".checklist-item__picture").all():
        picture.scroll_into_view_if_needed()  # they load lazily, as on a real phone
        expect(picture).to_have_js_property("complete", True)
        assert picture.evaluate("img => img.naturalWidth") > 0
        box = picture.bounding_box()
        assert box is not None and box["height"] <= PHONE["height"] / 2, box  # not the whole screen
    for target in page.locator(".answers button, .how-to summary").all():
        box = target.bounding_box()
        assert box is not None
        assert box["height"] >= TOUCH_TARGET and box["width"] >= TOUCH_TARGET, target.inner_text()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], target.inner_text()
    page.evaluate("window.scrollTo(0, 0)")


def _item(page: Page, n: int) -> Locator:
    return page.locator(".checklist-item").nth(n)


def _open_the_list(bob: Page, checklist_url: str, camera: Camera) -> None:
    bob.goto(checklist_url)
    expect(bob.get_by_role("heading", level=1)).to_have_text("Photos Alice would like taken down")
    expect(bob.locator(".lead")).to_contain_text("Thank you, Bob. 2 of 2 still need an answer.")
    items = bob.locator(".checklist-item")
    expect(items).to_have_count(2)
    for number, item in enumerate(items.all(), start=1):
        # Each item is told apart by its number, for screen readers too, and shows whose face.
        picture = item.get_by_role("img", name=f"Photo {number} on your list")
        expect(picture).to_have_accessible_name(re.compile("with Alice’s face outlined"))
        expect(item.locator("svg .face-box")).to_have_count(1)
        expect(item.get_by_role("heading", level=2)).to_contain_text(f"{number}. ")
        expect(item.locator(".path")).to_contain_text("photos/20")
        answers = item.get_by_role("group", name="Your answer").get_by_role("button")
        expect(answers).to_have_count(4)
        expect(answers.last).to_have_accessible_name("That’s not Alice")
        expect(item.locator(".button--primary")).to_have_count(0)  # none drawn as chosen
        expect(item.get_by_role("link", name="How to take it down")).to_be_visible()
    # The steps once per platform, above the list, folded: the items stay short.
    how_to = bob.locator(".how-tos details.how-to")
    expect(how_to).to_have_count(1)
    expect(how_to).not_to_have_attribute("open", "")
    expect(how_to.get_by_role("listitem").filter(has_text="delete it there")).to_be_hidden()
    _fits_the_phone(bob)
    camera.shoot(bob, "checklist-phone")


def _follow_the_steps(bob: Page, camera: Camera) -> None:
    """The steps open with a tap on their platform above the list, and fold away again."""
    how_to = bob.locator(".how-tos details.how-to")
    step = how_to.get_by_role("listitem").first
    how_to.locator("summary").tap()
    expect(step).to_be_visible()
    how_to.locator("summary").tap()
    expect(step).to_be_hidden()
    how_to.locator("summary").tap()
    expect(step).to_be_visible()
    expect(how_to.get_by_role("heading", level=3)).to_have_text("Take it down where you shared it")
    how_to.scroll_into_view_if_needed()
    camera.shoot(bob, "checklist-howto-phone")


def _answer(bob: Page, camera: Camera) -> None:
    _item(bob, 0).get_by_role("button", name="I removed it").tap()
    expect(bob.locator(".lead")).to_contain_text("1 of 2 still needs an answer.")
    first = _item(bob, 0)
    expect(first).to_have_class(re.compile(r"checklist-item--removed"))
    removed = first.get_by_role("button", name="I removed it")
    expect(removed).to_have_attribute("aria-pressed", "true")
    expect(first.locator(".checklist-item__answer")).to_have_text(
        "✓ Your answer: I removed it. You can still change it."
    )
    expect(first.locator(".checklist-item__check")).to_be_visible()  # answered at a glance
    expect(removed).to_have_class(re.compile(r"button--primary"))
    expect(_item(bob, 1).locator(".button--primary")).to_have_count(0)
    _item(bob, 1).get_by_role("button", name="I’d rather keep it").tap()
    expect(bob.locator(".lead")).to_contain_text("Every photo has an answer: thank you!")
    second = _item(bob, 1)
    expect(second).to_have_class(re.compile(r"checklist-item--keep"))
    kept = second.get_by_role("button", name="I’d rather keep it")
    expect(kept).to_have_attribute("aria-pressed", "true")
    expect(kept).to_have_class(re.compile(r"button--primary"))  # the answer stands out
    expect(second.get_by_role("button", name="I removed it")).not_to_have_class(
        re.compile(r"button--primary")
    )
    _fits_the_phone(bob)
    camera.shoot(bob, "checklist-answered-phone")


def _see_the_answers(alice: Page, camera: Camera) -> None:
    alice.reload()
    panel = alice.locator("section", has=alice.locator("#checklist"))
    expect(panel).to_contain_text("2 of 2 items answered.")
    expect(panel).to_contain_text("1 removed.")
    expect(panel).to_contain_text("1 kept.")
    expect(panel.get_by_role("progressbar", name="answered")).to_have_attribute("value", "2")
    alice.locator(".group-card").first.get_by_role("link", name="Open this group").click()
    answers = alice.locator(".match-card .answer").all_inner_texts()
    assert sorted(answers) == [
        "Your friend removed it.",
        "Your friend would rather keep it.",
    ], answers
    camera.shoot(alice, "friend-answers")
    alice.get_by_role("link", name="Back to Bob").click()
    camera.shoot(alice, "friend-group-answered")
    alice.get_by_role("link", name="Dashboard", exact=True).click()
    row = alice.get_by_role("row").filter(has_text="bob@example.org")
    expect(row.locator("td[data-label='Matches']")).to_have_text("2")
    expect(row.locator("td[data-label='Open items']")).to_have_text("0")
    expect(row.locator("td[data-label='Answered']")).to_have_text("2 of 2")
    expect(row.get_by_role("progressbar", name="2 of 2 answered")).to_be_visible()
    camera.shoot(alice, "dashboard-progress")


def _stop_the_reminders(bob: Page, unsubscribe_url: str, camera: Camera) -> None:
    bob.goto(unsubscribe_url)
    expect(bob.get_by_role("heading", level=1)).to_have_text("Stop the reminders?")
    bob.get_by_role("button", name="Stop the reminders").tap()
    expect(bob.get_by_role("heading", level=1)).to_have_text("No more reminders")
    expect(bob.locator(".lead")).to_contain_text("not send you reminders about Alice’s list")
    camera.shoot(bob, "unsubscribed-phone")
    bob.get_by_role("link", name="open the list").tap()
    expect(bob.locator(".lead")).to_contain_text("Every photo has an answer")  # still open


@pytest.mark.timeout(120)
def test_it_takes_the_checklist_from_the_owner_to_the_friends_phone_and_back(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    offstage, camera = Offstage(), Camera(first=FIRST_SHOT)
    alice = _new_page(browser)
    _sign_up_and_enroll(alice, server, offstage)
    invite_url = _invite_bob(alice, offstage)
    bob = _new_page(browser)
    _accept_and_share(bob, invite_url, build_export(tmp_path), offstage)

    _review_in_bulk(alice, camera)
    _send_checklist(alice, camera)
    mail = _checklist_mail(server.data_dir / "outbox")
    assert mail["To"] == "bob@example.org"
    checklist_url = _link(_text_of(mail), server, "checklist")
    assert checklist_url.split("/")[-1] == invite_url.split("/")[-1]  # the one key bob holds
    unsubscribe_url = _link(str(mail["List-Unsubscribe"]), server, "unsubscribe")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    bobs_phone = phone.new_page()  # bob reads his mail on the phone: no cookie from before
    bobs_phone.set_default_timeout(15_000)
    _open_the_list(bobs_phone, checklist_url, camera)
    _follow_the_steps(bobs_phone, camera)
    _answer(bobs_phone, camera)
    _see_the_answers(alice, camera)
    _stop_the_reminders(bobs_phone, unsubscribe_url, camera)

    alice.get_by_role("link", name="Bob", exact=True).click()
    expect(alice.locator("section", has=alice.locator("#checklist"))).to_contain_text(
        "Bob asked for no more reminders."
    )
    assert alice.viewport_size == DESKTOP
