"""The owner's forms sent back with what is wrong: each message right under its field, the field
aria-invalid and described by it, the first wrong one autofocus, and what was typed kept (never a
password). alice is in a family circle; bob, another owner, is not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from service.app import create_app
from tests.conftest import make_settings
from tests.test_pages import PASSWORD, _client, _confirm, _csrf, _sign_up


class _Page(HTMLParser):
    """A page's elements by id (their attributes), the text of its paragraphs with an id, and
    which elements have autofocus."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.attrs: dict[str, dict[str, str | None]] = {}
        self.text: dict[str, str] = {}
        self.autofocus: list[str | None] = []
        self._paragraphs: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if (element := found.get("id")) is not None:
            self.attrs[element] = found
        if "autofocus" in found:
            self.autofocus.append(element)
        if tag == "p":
            self._paragraphs.append(element)
            if element is not None:
                self.text[element] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._paragraphs:
            self._paragraphs.pop()

    def handle_data(self, data: str) -> None:
        if self._paragraphs and (element := self._paragraphs[-1]) is not None:
            self.text[element] += data


def assert_sent_back(answer: Response, field: str, words: str, kept: dict[str, str]) -> _Page:
    """`words` right under the input `field` (by id), which is invalid, described by them and
    the only autofocus; the fields of `kept` (by id) hold what was typed; no message at the top."""
    page = _Page(answer.text)
    error = f"{field}-error"
    assert page.attrs[field].get("aria-invalid") == "true", page.attrs[field]
    assert error in (page.attrs[field].get("aria-describedby") or "").split()
    assert words in page.text[error], page.text[error]
    assert re.search(
        rf'<input id="{field}"[^>]*>\s*<p class="field-error" id="{error}">', answer.text
    )
    assert page.autofocus == [field]
    assert {name: page.attrs[name].get("value") for name in kept} == kept
    assert "flash--error" not in answer.text
    return page


def _no_password_kept(page: _Page) -> None:
    passwords = [a for a in page.attrs.values() if a.get("type") == "password"]
    assert passwords and all("value" not in a for a in passwords)


@dataclass
class World:
    app: FastAPI
    alice_session: str
    bob_session: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    app = create_app(make_settings(tmp_path_factory.mktemp("forms")), consume=False)
    sessions = []
    for name in ("Alice", "Bob"):
        email = f"{name.lower()}@example.org"
        sessions.append(_sign_up(_client(app), name, email))
        _confirm(_client(app, sessions[-1]), email)
    alice = _client(app, sessions[0])
    made = alice.post("/circle", data={"csrf_token": _csrf(alice, "/circle"), "name": "Smiths"})
    assert made.status_code == 303, made.text
    yield World(app, *sessions)
    app.state.services.db.dispose()


@pytest.fixture
def alice(world: World) -> TestClient:
    return _client(world.app, world.alice_session)


@pytest.fixture
def bob(world: World) -> TestClient:
    return _client(world.app, world.bob_session)


@pytest.fixture
def anonymous(world: World) -> TestClient:
    return _client(world.app)


def _post(client: TestClient, page: str, action: str, **fields: str) -> Response:
    return client.post(action, data={"csrf_token": _csrf(client, page), **fields})


# ---- the dashboard ----


def test_it_puts_a_wrong_address_under_the_friends_address_and_keeps_the_name(
    alice: TestClient,
) -> None:
    answer = _post(alice, "/", "/friends", name="Gina", email="gina at example.org")
    assert answer.status_code == 422
    kept = {"friend-name": "Gina", "friend-email": "gina at example.org"}
    assert_sent_back(answer, "friend-email", "Please enter one valid e-mail address", kept)


def test_it_puts_a_missing_name_under_the_friends_name(alice: TestClient) -> None:
    answer = _post(alice, "/", "/friends", name="  ", email="hugo@example.org")
    assert answer.status_code == 422
    kept = {"friend-email": "hugo@example.org"}
    assert_sent_back(answer, "friend-name", "Please enter your friend's name.", kept)


def test_it_says_under_the_address_that_this_friend_was_invited_already(
    alice: TestClient,
) -> None:
    assert _post(alice, "/", "/friends", name="Ivan", email="ivan@example.org").status_code == 303
    again = _post(alice, "/", "/friends", name="Ivan B.", email="ivan@example.org")
    assert again.status_code == 422
    kept = {"friend-name": "Ivan B.", "friend-email": "ivan@example.org"}
    assert_sent_back(again, "friend-email", "You invited ivan@example.org already", kept)


def test_it_says_under_the_address_that_the_person_invited_has_an_account(
    alice: TestClient,
) -> None:
    answer = _post(alice, "/", "/owner-invitations", email="bob@example.org")
    assert answer.status_code == 422
    kept = {"owner-email": "bob@example.org"}
    assert_sent_back(answer, "owner-email", "There is an account with this address already", kept)


def test_it_puts_what_was_wrong_with_the_reference_photos_under_their_field(
    alice: TestClient,
) -> None:
    files = [("file", (f"{n}.jpg", b"not a photo", "image/jpeg")) for n in range(6)]
    answer = alice.post("/reference-photos", data={"csrf_token": _csrf(alice, "/")}, files=files)
    assert answer.status_code == 422
    page = assert_sent_back(answer, "reference-file", "Please choose at most 5 photos.", {})
    assert "value" not in page.attrs["reference-file"]


def test_it_says_over_the_form_when_the_invitations_of_the_hour_are_used_up(
    tmp_path: Path,
) -> None:
    app = create_app(make_settings(tmp_path, invitations_per_hour=1), consume=False)
    session = _sign_up(_client(app), "Olga", "olga@example.org")
    olga = _client(app, session)
    _confirm(olga, "olga@example.org")
    assert _post(olga, "/", "/friends", name="Pia", email="pia@example.org").status_code == 303
    answer = _post(olga, "/", "/friends", name="Quinn", email="quinn@example.org")
    assert answer.status_code == 429
    page = _Page(answer.text)
    assert page.autofocus == ["friend-problem"]
    assert "Too many" in page.text["friend-problem"] or "try again" in page.text["friend-problem"]
    assert page.attrs["friend-name"].get("value") == "Quinn"
    assert page.attrs["friend-email"].get("value") == "quinn@example.org"
    assert "aria-invalid" not in answer.text
    # The message is in the invitation form, not at the top of the page.
    form = answer.text[answer.text.index('action="/friends"') :]
    assert form.index('id="friend-problem"') < form.index("</form>")
    app.state.services.db.dispose()


# ---- signing up and logging in ----

SIGN_UPS = [
    ("Eve", "eve@example.org", "short", "password", "The password needs at least 10 characters."),
    ("Eve", "eve@example", PASSWORD, "email", "Please enter one valid e-mail address"),
    ("Eve", "alice@example.org", PASSWORD, "email", "An account with this e-mail address exists"),
    ("   ", "eve@example.org", PASSWORD, "name", "Please enter your name."),
]


@pytest.mark.parametrize(("name", "email", "password", "field", "words"), SIGN_UPS)
def test_it_puts_what_is_wrong_with_a_sign_up_under_its_field(
    anonymous: TestClient, name: str, email: str, password: str, field: str, words: str
) -> None:
    answer = _post(anonymous, "/signup", "/signup", name=name, email=email, password=password)
    assert answer.status_code == 422
    page = assert_sent_back(answer, field, words, {"name": name, "email": email})
    _no_password_kept(page)
    assert "session" not in answer.cookies


def test_it_puts_a_wrong_password_under_the_password_and_keeps_the_address(
    anonymous: TestClient,
) -> None:
    answer = _post(
        anonymous, "/login", "/login", email="alice@example.org", password="not her password"
    )
    assert answer.status_code == 401
    kept = {"email": "alice@example.org"}
    page = assert_sent_back(answer, "password", "Wrong e-mail address or password.", kept)
    _no_password_kept(page)


def test_it_puts_a_wrong_address_under_the_address_on_logging_in(anonymous: TestClient) -> None:
    answer = _post(anonymous, "/login", "/login", email="alice@", password=PASSWORD)
    assert answer.status_code == 422
    page = assert_sent_back(answer, "email", "Please enter one valid e-mail address", {})
    assert page.attrs["email"].get("value") == "alice@"


# ---- the family circle ----


def test_it_puts_a_missing_circle_name_under_its_field(bob: TestClient) -> None:
    answer = _post(bob, "/circle", "/circle", name="   ")
    assert answer.status_code == 422
    assert_sent_back(answer, "circle-name", "Please give the circle a name", {})


def test_it_puts_a_wrong_relatives_address_under_its_field(world: World, alice: TestClient) -> None:
    circle = re.search(r'action="/circles/(\d+)/members"', alice.get("/circle").text)
    assert circle is not None
    action = f"/circles/{circle.group(1)}/members"
    answer = _post(alice, "/circle", action, email="bob@example")
    assert answer.status_code == 422
    kept = {"member-email": "bob@example"}
    assert_sent_back(answer, "member-email", "Please enter one valid e-mail address", kept)
    member = _post(alice, "/circle", action, email="alice@example.org")
    assert member.status_code == 422
    kept = {"member-email": "alice@example.org"}
    assert_sent_back(member, "member-email", "alice@example.org is in “Smiths” already", kept)


# ---- and nothing of it on a page that went well ----


@pytest.mark.parametrize("path", ["/", "/circle", "/account"])
def test_it_marks_nothing_invalid_on_a_page_opened_anew(alice: TestClient, path: str) -> None:
    page = alice.get(path)
    assert page.status_code == 200
    assert "aria-invalid" not in page.text and "autofocus" not in page.text


@pytest.mark.parametrize("path", ["/login", "/signup"])
def test_it_marks_nothing_invalid_on_an_open_page(anonymous: TestClient, path: str) -> None:
    page = anonymous.get(path)
    assert "aria-invalid" not in page.text and "autofocus" not in page.text
