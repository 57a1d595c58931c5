"""The whole journey in a real browser against the real server, as a new user would follow it:
alice signs up and enrolls her face, invites bob; bob accepts and shares an export, which is
really scanned; alice reviews the photos found. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.pages_support import OBAMA, PROJECT, build_export, face_photo

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = PROJECT / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.slow

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(f"no browser at {CHROMIUM}", allow_module_level=True)

from playwright.sync_api import (  # noqa: E402
    Browser,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)


@dataclass
class Server:
    url: str
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server stopped at start-up:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the server did not answer within 45 s:\n{log.read_text()[-3000:]}")


@contextmanager
def serve(data_dir: Path, port: int | None = None) -> Iterator[Server]:
    """`photo-removal serve` on a free port of loopback, with its embedded job consumer."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    # Only our settings: a queue or database from the environment would not be this test's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTO_REMOVAL_")}
    env |= {"PHOTO_REMOVAL_DATA_DIR": str(data_dir), "PHOTO_REMOVAL_BASE_URL": url}
    log = data_dir / "server.log"
    script = Path(sys.executable).parent / "photo-removal"  # the installed console script
    program = [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]
    command = [*program, "serve", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_up(url, process, log)
        yield Server(url, data_dir)
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server and its scan workers, nothing else
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("journey")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


class Camera:
    """Numbered full-page screenshots, in the order the journey takes them."""

    def __init__(self, first: int = 1) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.count = first - 1  # another journey's numbers are left alone

    def shoot(self, page: Page, name: str) -> None:
        self.count += 1
        for old in SHOTS.glob(f"{self.count:02d}-*.png"):
            old.unlink()  # an earlier run's shot of this number, perhaps under another name
        page.screenshot(path=SHOTS / f"{self.count:02d}-{name}.png", full_page=True)

    def shoot_phone(self, page: Page, name: str) -> None:
        page.set_viewport_size(PHONE)
        self.shoot(page, f"{name}-phone")
        page.set_viewport_size(DESKTOP)


def _new_page(browser: Browser) -> Page:
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.set_default_timeout(15_000)
    return page


def _sign_up_and_enroll(alice: Page, server: Server, camera: Camera) -> None:
    alice.goto(server.url)
    expect(alice.get_by_role("heading", level=1)).to_contain_text("photos of you taken down")
    camera.shoot(alice, "welcome")
    alice.get_by_role("link", name="Sign up").click()
    alice.get_by_label("Your name").fill("Alice")
    alice.get_by_label("E-mail address").fill("alice@example.org")
    alice.get_by_label("Password").fill(PASSWORD)
    camera.shoot(alice, "signup")
    alice.get_by_role("button", name="Create account").click()
    expect(alice.get_by_role("heading", name="Hello, Alice")).to_be_visible()
    expect(alice.get_by_text("Please confirm your address.")).to_be_visible()
    camera.shoot(alice, "dashboard-empty")
    _confirm_address(alice, server, "alice@example.org")
    faces = alice.get_by_label("Add photos of your face (up to 5 at once)")
    faces.set_input_files(face_photo(OBAMA))
    alice.get_by_role("button", name="Add the photos").click()
    face = alice.get_by_role("img", name="Your face, reference photo 1")
    expect(face).to_be_visible()
    assert face.evaluate("img => img.naturalWidth") > 0  # the crop really loads


def _confirm_address(page: Page, server: Server, email: str) -> None:
    """Open the link of the confirmation mail (in the outbox folder), as from an inbox."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for path in (server.data_dir / "outbox").glob("*.eml"):
            mail = message_from_bytes(path.read_bytes(), policy=policy.default)
            body = mail.get_body(("plain",))
            text = body.get_content() if body is not None else ""  # type: ignore[attr-defined]
            found = re.search(r"https?://\S+/confirm/\S+", text)
            if mail["To"] == email and found:
                page.goto(found.group(0))
                expect(page.get_by_role("heading", level=1)).to_have_text("Thank you, Alice")
                page.get_by_role("link", name="Go to your dashboard").click()
                expect(page.get_by_text("Please confirm your address.")).to_have_count(0)
                return
        time.sleep(0.2)
    pytest.fail(f"no confirmation mail to {email} within 30 s")


def _invite_bob(alice: Page, camera: Camera) -> str:
    alice.get_by_label("Their name").fill("Bob")
    alice.get_by_label("Their e-mail address").fill("bob@example.org")
    alice.get_by_role("button", name="Send invitation").click()
    expect(alice.get_by_role("status")).to_contain_text("Invitation sent to Bob")
    camera.shoot(alice, "dashboard-invited")
    alice.get_by_role("link", name="Bob", exact=True).click()
    expect(alice.get_by_role("heading", level=1)).to_have_text("Bob")
    camera.shoot(alice, "friend-invited")
    return alice.get_by_label("Invitation link for Bob").input_value()


def _accept_and_share(bob: Page, invite_url: str, export: Path, camera: Camera) -> None:
    bob.goto(invite_url)
    expect(bob.get_by_role("heading", level=1)).to_have_text("Alice asks for your help")
    expect(bob.get_by_role("img", name="Alice’s face, reference photo 1")).to_be_visible()
    camera.shoot(bob, "invite")
    camera.shoot_phone(bob, "invite")
    bob.get_by_role("button", name="Accept and continue").click()
    expect(bob.get_by_role("heading", level=1)).to_have_text("Share your photos")
    camera.shoot(bob, "share")
    bob.get_by_label("Your download (ZIP or TAR file)").set_input_files(face_photo(OBAMA))
    bob.get_by_role("button", name="Upload").click()
    expect(bob.locator("#upload-message")).to_contain_text("This is not a ZIP or TAR archive")
    expect(bob.locator("#upload-progress")).to_be_hidden()  # no full bar beside the error
    bob.get_by_label("Your download (ZIP or TAR file)").set_input_files(export)
    bob.get_by_role("button", name="Upload").click()
    expect(bob.locator("#upload-message")).to_contain_text("Uploaded.", timeout=30_000)
    assert bob.locator("#upload-progress").evaluate("bar => bar.value") == 100
    expect(bob.locator(".scan")).to_have_count(1)
    expect(bob.locator(".scan--running, .scan--done")).to_be_visible(timeout=30_000)
    camera.shoot(bob, "share-scanning")
    done = bob.locator(".scan--done")
    expect(done).to_be_visible(timeout=60_000)
    expect(done).to_contain_text("4 of 4 photos")
    expect(done).to_contain_text("Your upload has been deleted.")
    camera.shoot(bob, "share-done")
    camera.shoot_phone(bob, "share-done")


def _face_box_inside_picture(card: Locator) -> bool:
    picture = card.locator(".match-card__picture img").bounding_box()
    box = card.locator(".face-box").bounding_box()
    assert picture is not None and box is not None
    return (
        picture["x"] <= box["x"]
        and box["x"] + box["width"] <= picture["x"] + picture["width"] + 1
        and picture["y"] <= box["y"]
        and box["y"] + box["height"] <= picture["y"] + picture["height"] + 1
    )


def _review(alice: Page, camera: Camera) -> None:
    """The friend page shows a card per look-alike group, its face large beside alice's; the
    group's own page shows each photo with the face outlined, decided without a reload."""
    alice.reload()
    group = alice.locator(".group-card").first
    expect(group).to_be_visible()
    for face in group.locator(".face-pair img").all():
        expect(face).to_have_js_property("complete", True)
        assert face.evaluate("img => img.naturalWidth") > 0
    camera.shoot(alice, "friend-matches")
    group.get_by_role("link", name="Decide photo by photo").click()
    cards = alice.locator(".match-card")
    expect(cards.first).to_be_visible()
    titles = cards.locator("h3").all_inner_texts()
    assert {"obama-480p.jpg", "obama_and_biden.jpg"} <= set(titles), titles
    for card in cards.all():
        expect(card.locator(".match-card__picture img")).to_have_js_property("complete", True)
        assert card.locator(".match-card__picture img").evaluate("img => img.naturalWidth") > 0
        assert _face_box_inside_picture(card)
    cards.nth(0).get_by_role("button", name="Confirm").click()
    expect(cards.nth(0)).to_contain_text("Confirmed: this is you")
    cards.nth(1).get_by_role("button", name="Not me").click()
    expect(cards.nth(1)).to_contain_text("Rejected: not you")
    camera.shoot(alice, "friend-reviewed")
    camera.shoot_phone(alice, "friend-reviewed")


def _withdraw(bob: Page, camera: Camera) -> None:
    withdraw = bob.get_by_role("button", name="Withdraw my consent")
    bob.once("dialog", lambda dialog: dialog.dismiss())
    withdraw.click()
    expect(bob.get_by_role("heading", level=1)).to_have_text("Share your photos")  # stayed
    bob.once("dialog", lambda dialog: dialog.accept())
    withdraw.click()
    expect(bob.get_by_role("status")).to_contain_text("You withdrew your consent")
    expect(bob.get_by_role("button", name="Accept after all")).to_be_visible()
    camera.shoot(bob, "invite-withdrawn")


def _look_around(alice: Page, camera: Camera) -> None:
    alice.get_by_role("link", name="Dashboard", exact=True).click()
    row = alice.get_by_role("row").filter(has_text="bob@example.org")
    expect(row).to_contain_text("Accepted")
    camera.shoot(alice, "dashboard-after-review")
    camera.shoot_phone(alice, "dashboard-after-review")
    alice.get_by_role("link", name="Account").click()
    expect(alice.get_by_role("heading", name="What is stored about you")).to_be_visible()
    camera.shoot(alice, "account")
    alice.get_by_role("button", name="Log out").click()
    alice.get_by_role("link", name="Log in").click()
    alice.get_by_label("E-mail address").fill("alice@example.org")
    alice.get_by_label("Password").fill("not the password")
    alice.get_by_role("button", name="Log in").click()
    expect(alice.get_by_label("Password")).to_be_focused()  # the message is right under it
    expect(alice.locator("#password-error")).to_contain_text("Wrong e-mail address or password")
    camera.shoot(alice, "login-error")


@pytest.mark.timeout(180)
def test_it_takes_a_new_user_from_sign_up_to_reviewed_matches(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    camera = Camera()
    export = build_export(tmp_path)
    alice = _new_page(browser)
    _sign_up_and_enroll(alice, server, camera)
    invite_url = _invite_bob(alice, camera)
    assert invite_url.startswith(f"{server.url}/invite/")
    bob = _new_page(browser)  # a second browser context: no cookie of alice's
    _accept_and_share(bob, invite_url, export, camera)
    _review(alice, camera)
    _look_around(alice, camera)
    assert not list((server.data_dir / "quarantine").iterdir())  # the upload is gone
    _withdraw(bob, camera)
