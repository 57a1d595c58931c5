"""The HTML pages, driven like a browser would: alice owns things, bob is her invited friend,
charlie is another owner who must see nothing of alice's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from service import invites
from service.app import create_app
from service.config import Settings
from tests.pages_support import DOGS, OBAMA, build_export, face_photo
from tests.test_api_journey import mailed_link_in

PASSWORD = "correct horse battery"


@dataclass
class World:
    app: FastAPI
    alice_session: str
    charlie_session: str
    bob_token: str
    bob_id: int


def _client(app: FastAPI, session: str | None = None) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if session:
        client.cookies.set("session", session)
    return client


def _template(response: Response) -> str:
    """The template a page was rendered from (Starlette's TestClient records it)."""
    name: str = response.template.name  # type: ignore[attr-defined]
    return name


def _context(response: Response) -> dict[str, Any]:
    """The values a page was rendered with."""
    context: dict[str, Any] = response.context  # type: ignore[attr-defined]
    return context


def _csrf(client: TestClient, page: str = "/login") -> str:
    """The token a form on `page` carries (the page also sets the matching cookie)."""
    token: str = _context(client.get(page))["csrf_token"]
    return token


def _sign_up(client: TestClient, name: str, email: str) -> str:
    answer = client.post(
        "/signup",
        data={"csrf_token": _csrf(client), "name": name, "email": email, "password": PASSWORD},
    )
    assert answer.status_code == 303, answer.text
    return answer.cookies["session"]


def _confirm(client: TestClient, email: str) -> None:
    """Open the link of the confirmation mail, as the owner would."""
    link = mailed_link_in(client.app, email, "confirm_address")  # type: ignore[arg-type]
    assert client.get(link.removeprefix("http://testserver")).status_code == 200


def _enroll(client: TestClient, photo: Path) -> Response:
    with photo.open("rb") as f:
        return client.post(
            "/reference-photos",
            data={"csrf_token": _csrf(client, "/")},
            files={"file": (photo.name, f, "image/jpeg")},
        )


def _invite(client: TestClient, name: str, email: str) -> Response:
    return client.post(
        "/friends", data={"csrf_token": _csrf(client, "/"), "name": name, "email": email}
    )


def _token_of(client: TestClient, friend_id: int) -> str:
    url = _context(client.get(f"/friends/{friend_id}"))["invite_url"]
    return str(url).rsplit("/", 1)[-1]


def _consent(client: TestClient, token: str, accept: str) -> Response:
    csrf = _csrf(client, f"/invite/{token}")
    return client.post(f"/invite/{token}/consent", data={"csrf_token": csrf, "accept": accept})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """alice enrolls her face and invites bob, who accepts and shares an export that is scanned."""
    data_dir = tmp_path_factory.mktemp("pages")
    settings = Settings(
        data_dir=data_dir, scan_workers=1, base_url="http://testserver", signups="open"
    )
    app = create_app(settings, consume=False)
    # Huey's immediate mode runs each job as it is sent: the scan is done when the upload returns.
    app.state.services.jobs.huey.immediate = True
    alice = _client(app)
    alice_session = _sign_up(alice, "Alice", "alice@example.org")
    _confirm(alice, "alice@example.org")
    assert _enroll(alice, face_photo(OBAMA)).status_code == 303
    bob_id = _new_friend(alice, "Bob")
    token = _token_of(alice, bob_id)
    bob = _client(app)
    assert _consent(bob, token, "yes").status_code == 303
    with build_export(data_dir).open("rb") as f:
        upload = bob.post(f"/api/v1/invites/{token}/exports", files={"file": ("my.zip", f)})
    assert upload.status_code == 202, upload.text
    charlie_session = _sign_up(_client(app), "Charlie", "charlie@example.org")
    yield World(app, alice_session, charlie_session, token, bob_id)
    app.state.services.db.dispose()


@pytest.fixture
def alice(world: World) -> TestClient:
    return _client(world.app, world.alice_session)


@pytest.fixture
def charlie(world: World) -> TestClient:
    return _client(world.app, world.charlie_session)


@pytest.fixture
def anonymous(world: World) -> TestClient:
    return _client(world.app)


def _alice_matches(alice: TestClient, friend_id: int) -> list[dict[str, Any]]:
    """The friend's matches as the API lists them (a page session may read the API)."""
    matches: list[dict[str, Any]] = alice.get(f"/api/v1/friends/{friend_id}/matches").json()
    return matches


def _alice_match_ids(alice: TestClient, world: World) -> list[int]:
    return [m["id"] for m in _alice_matches(alice, world.bob_id)]


# ---- anonymous visitors, signing up and logging in ----


def test_it_welcomes_anonymous_visitors(anonymous: TestClient) -> None:
    page = anonymous.get("/")
    assert _template(page) == "welcome.html"
    assert 'href="/signup"' in page.text and 'href="/login"' in page.text
    assert "Log out" not in page.text
    assert '<html lang="en">' in page.text and 'name="viewport"' in page.text


@pytest.mark.parametrize("path", ["/account", "/friends/1"])
def test_it_redirects_anonymous_visitors_to_login(anonymous: TestClient, path: str) -> None:
    answer = anonymous.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"


def test_it_signs_up_and_lands_on_an_empty_dashboard(anonymous: TestClient) -> None:
    anonymous.cookies.set("session", _sign_up(anonymous, "Dora", "dora@example.org"))
    page = anonymous.get("/")
    assert _template(page) == "dashboard.html"
    assert _context(page)["owner"].name == "Dora"
    assert _context(page)["references"] == [] and _context(page)["friends"] == []
    assert "Hello, Dora" in page.text
    assert "No reference photo yet" in page.text
    assert 'action="/logout"' in page.text


def test_it_keeps_the_values_when_sign_up_is_refused(anonymous: TestClient) -> None:
    answer = anonymous.post(
        "/signup",
        data={
            "csrf_token": _csrf(anonymous, "/signup"),
            "name": "Eve",
            "email": "eve@example.org",
            "password": "short",
        },
    )
    assert answer.status_code == 422
    assert _template(answer) == "signup.html"
    assert _context(answer)["form"].errors == {
        "password": "the password needs at least 10 characters"
    }
    assert 'value="Eve"' in answer.text and 'value="eve@example.org"' in answer.text


def test_it_shows_an_error_for_a_wrong_password(world: World, anonymous: TestClient) -> None:
    answer = anonymous.post(
        "/login",
        data={
            "csrf_token": _csrf(anonymous),
            "email": "alice@example.org",
            "password": "not her password",
        },
    )
    assert answer.status_code == 401
    assert _template(answer) == "login.html"
    assert _context(answer)["form"].errors == {"password": "wrong e-mail address or password"}
    assert 'id="password-error">Wrong e-mail address or password.' in answer.text
    assert 'value="alice@example.org"' in answer.text
    assert "session" not in answer.cookies


def test_it_logs_in_and_out(world: World, anonymous: TestClient) -> None:
    answer = anonymous.post(
        "/login",
        data={"csrf_token": _csrf(anonymous), "email": "charlie@example.org", "password": PASSWORD},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    anonymous.cookies.set("session", answer.cookies["session"])
    assert _template(anonymous.get("/")) == "dashboard.html"
    out = anonymous.post("/logout", data={"csrf_token": _csrf(anonymous, "/")})
    assert out.status_code == 303
    assert anonymous.get("/account").headers["location"] == "/login"


FORMS = [
    ("/login", {"email": "alice@example.org", "password": PASSWORD}),
    ("/signup", {"name": "Mallory", "email": "mallory@example.org", "password": PASSWORD}),
    ("/logout", {}),
    ("/friends", {"name": "Mallory", "email": "mallory@example.org"}),
    ("/account/delete", {"confirm": "yes"}),
    ("/matches/1/review", {"decision": "confirmed"}),
    ("/reference-photos/1/delete", {}),
]


@pytest.mark.parametrize(("path", "fields"), FORMS)
def test_it_refuses_a_form_without_its_csrf_token(
    alice: TestClient, path: str, fields: dict[str, str]
) -> None:
    _csrf(alice, "/")  # the cookie is there; the form field is not: a forged cross-site post
    answer = alice.post(path, data=fields)
    assert answer.status_code == 403
    assert alice.get("/account").status_code == 200  # alice is still here, logged in


def test_it_refuses_a_consent_without_its_csrf_token(world: World, anonymous: TestClient) -> None:
    answer = anonymous.post(f"/invite/{world.bob_token}/consent", data={"accept": "no"})
    assert answer.status_code == 403
    assert anonymous.get(f"/invite/{world.bob_token}/share").status_code == 200


# ---- the owner's pages ----


def test_it_shows_alice_her_face_her_friends_and_what_waits(
    world: World, alice: TestClient
) -> None:
    page = alice.get("/")
    assert _template(page) == "dashboard.html"
    (ref,) = _context(page)["references"]
    assert f'src="/api/v1/reference-photos/{ref.id}/thumbnail"' in page.text
    assert f'action="/reference-photos/{ref.id}/delete"' in page.text
    assert (
        alice.get(f"/api/v1/reference-photos/{ref.id}/thumbnail")
        .headers["content-type"]
        .startswith("image/jpeg")
    )
    friends = _context(page)["friends"]
    bob, matches, _, _ = next(row for row in friends if row[0].id == world.bob_id)
    assert bob.status == "accepted" and matches >= 2
    assert f'<a href="/friends/{world.bob_id}">Bob</a>' in page.text
    assert _context(page)["pending"] >= 1
    assert re.search(r"\d+ match(es)? waits? for your review", page.text)
    # The callout takes the owner there in one click.
    assert f'href="/friends/{world.bob_id}">Review Bob’s photos</a>' in page.text


def test_it_explains_why_a_photo_without_a_face_is_refused(alice: TestClient) -> None:
    page = _enroll(alice, face_photo(DOGS))
    assert page.status_code == 422
    assert _context(page)["form"].errors["file"]
    assert 'id="reference-file-error"' in page.text
    assert len(_context(page)["references"]) == 1


def test_it_takes_several_reference_photos_at_once_and_says_what_came_of_each(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, base_url="http://testserver", signups="open")
    with _client(create_app(settings, consume=False)) as owner:
        owner.cookies.set("session", _sign_up(owner, "Olga", "olga@example.org"))
        photos = [face_photo(OBAMA), face_photo(Path("dev/obama/obama1.jpg")), face_photo(DOGS)]
        answer = owner.post(
            "/reference-photos",
            data={"csrf_token": _csrf(owner, "/")},
            files=[("file", (p.name, p.read_bytes(), "image/jpeg")) for p in photos],
        )
        assert answer.status_code == 422
        assert _context(answer)["notice"] == "Added 2 photos of your face."
        assert _context(answer)["form"].errors["file"].startswith("dogs.jpg: ")
        assert len(_context(answer)["references"]) == 2


def test_it_says_an_invitation_was_sent(alice: TestClient) -> None:
    answer = _invite(alice, "Fred", "fred@example.org")
    assert answer.status_code == 303
    page = alice.get(answer.headers["location"])
    assert "Invitation sent to Fred (fred@example.org)." in page.text
    assert 'role="status"' in page.text


def test_it_shows_the_invitation_error_on_the_dashboard(alice: TestClient) -> None:
    page = _invite(alice, "Gina", "not an address")
    assert page.status_code == 422 and _template(page) == "dashboard.html"
    assert "valid e-mail address" in _context(page)["form"].errors["email"]


def test_it_shows_the_friends_matches_with_the_face_outlined(
    world: World, alice: TestClient
) -> None:
    page = alice.get(f"/friends/{world.bob_id}")
    assert _template(page) == "friend.html"
    matches = _alice_matches(alice, world.bob_id)
    photos = {m["photo"] for m in matches}
    assert {"photos/2019/obama-480p.jpg", "photos/2020/obama_and_biden.jpg"} <= photos
    assert _context(page)["invite_url"] == f"http://testserver/invite/{world.bob_token}"
    assert f'value="http://testserver/invite/{world.bob_token}"' in page.text
    # Grouped matches are a card per group on this page, each photo on the group's own page.
    cards = _context(page)["cards"]
    assert {m["group"] for m in matches} - {None} == {c.id for c in cards}
    for card in cards:
        assert f'src="/api/v1/matches/{card.face.id}/face"' in page.text
        assert f'action="/friends/{world.bob_id}/groups/{card.id}/review"' in page.text
    pages = [page] + [alice.get(f"/friends/{world.bob_id}/groups/{c.id}") for c in cards]
    text = "".join(p.text for p in pages)
    for match_id in (m["id"] for m in matches):
        assert f'src="/api/v1/matches/{match_id}/thumbnail"' in text
        assert f'action="/matches/{match_id}/review"' in text
    boxes = re.findall(r'class="face-box" x="([\d.]+)%" y="([\d.]+)%"', text)
    assert len(boxes) == len(matches)
    assert all(0 <= float(x) < 100 and 0 <= float(y) < 100 for x, y in boxes)
    assert "Strong match" in text and "obama_and_biden.jpg" in text


def test_it_records_the_owners_review(world: World, alice: TestClient) -> None:
    first, second, *_ = _alice_match_ids(alice, world)
    for match_id, decision in ((first, "confirmed"), (second, "rejected")):
        answer = alice.post(
            f"/matches/{match_id}/review",
            data={"csrf_token": _csrf(alice, "/"), "decision": decision},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/friends/{world.bob_id}#match-{match_id}"
    reviews = {m["id"]: m["review"] for m in _alice_matches(alice, world.bob_id)}
    assert reviews[first] == "confirmed" and reviews[second] == "rejected"
    # She takes the rejection back: the photo waits for her again, and her face's look-alikes
    # (her other photos, later tests' uploads) are proposed again.
    undone = alice.post(f"/matches/{second}/review/undo", data={"csrf_token": _csrf(alice, "/")})
    assert undone.status_code == 303
    reviews = {m["id"]: m["review"] for m in _alice_matches(alice, world.bob_id)}
    assert reviews[second] == "pending"


def test_it_hides_alices_friend_from_charlie(world: World, charlie: TestClient) -> None:
    assert charlie.get(f"/friends/{world.bob_id}").status_code == 404
    assert world.bob_id not in [f.id for f, _, _ in _context(charlie.get("/"))["friends"]]


def test_it_keeps_charlie_from_reviewing_alices_matches(
    world: World, alice: TestClient, charlie: TestClient
) -> None:
    match_id = _alice_match_ids(alice, world)[0]
    answer = charlie.post(
        f"/matches/{match_id}/review",
        data={"csrf_token": _csrf(charlie, "/"), "decision": "rejected"},
    )
    assert answer.status_code == 404


def test_it_shows_what_is_stored_on_the_account_page(alice: TestClient) -> None:
    page = alice.get("/account")
    assert _template(page) == "account.html"
    assert _context(page)["owner"].email == "alice@example.org"
    assert "What is stored about you" in page.text
    assert 'action="/account/delete"' in page.text and "cannot be undone" in page.text


def test_it_deletes_an_account_and_everything_in_it(anonymous: TestClient) -> None:
    anonymous.cookies.set("session", _sign_up(anonymous, "Hana", "hana@example.org"))
    answer = anonymous.post(
        "/account/delete", data={"csrf_token": _csrf(anonymous, "/"), "confirm": "yes"}
    )
    assert answer.status_code == 303
    welcome = anonymous.get(answer.headers["location"])
    assert _template(welcome) == "welcome.html"
    assert "Your account and everything in it have been deleted." in welcome.text
    refused = anonymous.post(
        "/login",
        data={"csrf_token": _csrf(anonymous), "email": "hana@example.org", "password": PASSWORD},
    )
    assert refused.status_code == 401


# ---- the friend's pages ----


def test_it_shows_the_invitation_without_a_login(world: World, anonymous: TestClient) -> None:
    alice = _client(world.app, world.alice_session)
    token = _token_of(alice, _new_friend(alice, "Ivan"))
    page = anonymous.get(f"/invite/{token}")
    assert _template(page) == "invite.html"
    assert _context(page)["owner"].name == "Alice"
    assert _context(page)["friend"].status == "invited"
    assert "Alice asks for your help" in page.text
    [(owner_id, (ref,))] = _context(page)["references"].items()  # each asker's faces
    assert owner_id == _context(page)["owner"].id
    face = anonymous.get(f"/invite/{token}/faces/{ref.id}")
    assert f'src="/invite/{token}/faces/{ref.id}"' in page.text
    assert face.status_code == 200 and face.headers["content-type"] == "image/jpeg"
    assert f"Consent text version {_context(page)['consent_version']}" in page.text
    assert 'value="yes"' in page.text and 'value="no"' in page.text
    assert "Dashboard" not in page.text  # a friend has no account: no owner navigation


def test_it_reminds_a_friend_who_accepted_where_to_share(
    world: World, anonymous: TestClient
) -> None:
    page = anonymous.get(f"/invite/{world.bob_token}")
    assert _context(page)["friend"].status == "accepted"
    assert "You accepted this invitation" in page.text
    assert f'href="/invite/{world.bob_token}/share"' in page.text
    assert "Withdraw my consent" in page.text and "Accept and continue" not in page.text


def test_it_answers_404_for_an_unknown_invitation(anonymous: TestClient) -> None:
    assert anonymous.get("/invite/not-a-real-token").status_code == 404
    assert anonymous.get("/invite/not-a-real-token/share").status_code == 404


def test_it_records_consent_and_opens_the_share_page(world: World, anonymous: TestClient) -> None:
    alice = _client(world.app, world.alice_session)
    token = _token_of(alice, _new_friend(alice, "Jun"))
    assert anonymous.get(f"/invite/{token}/share").headers["location"] == f"/invite/{token}"
    answer = _consent(anonymous, token, "yes")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/invite/{token}/share"
    page = anonymous.get(answer.headers["location"])
    assert _template(page) == "share.html"
    assert _context(page)["friend"].status == "accepted"
    assert "Up to 20 GB" in page.text
    assert f'action="/invite/{token}/share"' in page.text  # works without JavaScript too
    assert f'data-api-url="/api/v1/invites/{token}/exports"' in page.text
    assert 'aria-live="polite"' in page.text and "Nothing shared yet." in page.text


def test_it_lets_a_friend_decline_and_accept_after_all(world: World, anonymous: TestClient) -> None:
    alice = _client(world.app, world.alice_session)
    token = _token_of(alice, _new_friend(alice, "Kim"))
    answer = _consent(anonymous, token, "no")
    assert answer.headers["location"] == f"/invite/{token}"
    page = anonymous.get(f"/invite/{token}")
    assert _context(page)["friend"].status == "declined"
    assert "You declined this invitation" in page.text and "Accept after all" in page.text
    assert _consent(anonymous, token, "yes").headers["location"] == f"/invite/{token}/share"


def test_it_lets_a_friend_withdraw_and_deletes_what_they_shared(
    world: World, anonymous: TestClient, tmp_path: Path
) -> None:
    alice = _client(world.app, world.alice_session)
    friend_id = _new_friend(alice, "Lea")
    token = _token_of(alice, friend_id)
    _consent(anonymous, token, "yes")
    photos = {"a.jpg": Path("dev/obama/obama-480p.jpg")}
    with build_export(tmp_path, photos).open("rb") as f:
        anonymous.post(f"/api/v1/invites/{token}/exports", files={"file": ("a.zip", f)})
    assert len(_alice_matches(alice, friend_id)) == 1
    page = anonymous.get(_consent(anonymous, token, "no").headers["location"])
    assert "You withdrew your consent" in page.text and "Accept after all" in page.text
    assert _alice_matches(alice, friend_id) == []
    assert _context(alice.get(f"/friends/{friend_id}"))["tally"].total == 0


def test_it_shows_the_finished_scan_on_the_share_page(world: World, anonymous: TestClient) -> None:
    page = anonymous.get(f"/invite/{world.bob_token}/share")
    ((scan, source),) = _context(page)["scans"]
    assert scan.status == "done" and scan.photos_total == 4 and scan.matches >= 2
    assert source.label == "my.zip"
    assert f"Found {scan.matches} photos that may show Alice" in page.text
    assert 'value="4"' in page.text and "4 of 4 photos" in page.text
    assert "Your upload has been deleted." in page.text


def test_it_serves_its_own_stylesheet_and_script(anonymous: TestClient) -> None:
    css = anonymous.get("/static/style.css")
    js = anonymous.get("/static/app.js")
    assert css.status_code == 200 and ":focus-visible" in css.text
    assert js.status_code == 200 and "XMLHttpRequest" in js.text


def _new_friend(alice: TestClient, name: str) -> int:
    location = _invite(alice, name, f"{name.lower()}@example.org").headers["location"]
    found = re.search(r"invited=(\d+)", location)
    assert found, location
    return int(found.group(1))


def test_it_shows_a_readable_page_for_a_wrong_invitation_link(anonymous: TestClient) -> None:
    page = anonymous.get("/invite/not-a-real-token", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert _template(page) == "error.html"
    assert "This link no longer works" in page.text and "cancelled or replaced" in page.text
    assert "reply to the e-mail that brought you here" in page.text
    api = anonymous.get("/api/v1/invites/not-a-real-token/scans", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json() == {"detail": invites.UNKNOWN}
