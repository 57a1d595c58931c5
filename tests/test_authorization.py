"""Every route as three people: alice owns the objects, bob is another owner, charlie is nobody.

bob gets 404 for each of alice's objects (never 403: existence must not leak); charlie, with no
log-in or a wrong token, gets 401 (API) or is sent to log in (pages) or gets 404 (invitations).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session

from service.app import create_app
from service.config import Settings
from service.tables import Match, MatchGroup, Scan, Source
from tests.conftest import DATABASES, make_settings
from tests.test_api_journey import owner_token

WRONG = "this-is-not-a-valid-token-at-all-0123456789abc"


@dataclass
class World:
    client: TestClient
    settings: Settings
    alice: dict[str, str]
    bob: dict[str, str]
    ids: dict[str, int | str]


def _tiny_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG")
    return out.getvalue()


def _people(client: TestClient, faces_dir: Path) -> World:
    alice = owner_token(client, "alice@example.org", "Alice")
    bob = owner_token(client, "bob@example.org", "Bob")
    ids: dict[str, int | str] = {}
    for who, headers in (("alice", alice), ("bob", bob)):
        photo = (faces_dir / "dev/obama/obama.jpg").read_bytes()
        ref = client.post(
            "/api/v1/reference-photos", headers=headers, files={"file": ("a.jpg", photo)}
        )
        friend = client.post(
            "/api/v1/friends",
            headers=headers,
            json={"name": f"{who}'s friend", "email": f"f.{who}@example.org"},
        ).json()
        ids[f"{who}_ref"], ids[f"{who}_friend"] = ref.json()["id"], friend["id"]
        ids[f"{who}_token"] = friend["invite_url"].rsplit("/", 1)[1]
        ids[f"{who}_id"] = client.get("/api/v1/me", headers=headers).json()["id"]
    # Bob's friend accepted: his token gets past consent, to find that alice's objects are not
    # there. Alice's has not (the upload must ask for consent first); her second friend is the
    # one whose invitation is sent again, then cancelled.
    assert client.post(
        f"/api/v1/invites/{ids['bob_token']}/consent", json={"accept": True}
    ).is_success
    spare = {"name": "Fay", "email": "fay@example.org"}
    ids["alice_spare"] = client.post("/api/v1/friends", headers=alice, json=spare).json()["id"]
    circle = client.post("/api/v1/circles", headers=alice, json={"name": "The Smiths"})
    ids["alice_circle"] = circle.json()["id"]
    return World(client, client.app.state.services.settings, alice, bob, ids)  # type: ignore[attr-defined]


def _alice_match(world: World) -> None:
    """A scan and a match of alice's friend, written directly: the matrix needs objects only."""
    services = world.client.app.state.services  # type: ignore[attr-defined]
    with Session(services.db) as session:
        source = Source(
            owner_id=1, friend_id=int(world.ids["alice_friend"]), kind="export", label="x.zip"
        )
        session.add(source)
        session.flush()
        scan = Scan(owner_id=1, friend_id=source.friend_id, source_id=source.id, status="done")
        session.add(scan)
        session.flush()
        group = MatchGroup(owner_id=1, sealed_centre=b"x", size=1)
        session.add(group)
        session.flush()
        match = Match(
            group_id=group.id,
            owner_id=1,
            friend_id=source.friend_id,
            scan_id=scan.id,
            photo="a.jpg",
            box_key="1,2,3,0",
            box=[1, 2, 3, 0],
            distance=0.4,
            band="strong",
            sealed_encoding=b"x",
            thumbnail=_tiny_jpeg(),
            owner_view=_tiny_jpeg(),
            owner_view_box=[1, 2, 3, 0],
        )
        session.add(match)
        session.commit()
        world.ids["alice_scan"], world.ids["alice_match"] = scan.id or 0, match.id or 0
        world.ids["alice_group"] = group.id or 0


@pytest.fixture(scope="module", params=DATABASES)
def world(
    request: pytest.FixtureRequest, faces_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One world per database for the module; the test that deletes alice runs last."""
    settings = make_settings(tmp_path_factory.mktemp("world"), database=request.param)
    with TestClient(create_app(settings, consume=False)) as client:
        world = _people(client, faces_dir)
        _alice_match(world)
        yield world


# (method, path, json body or None, alice's expected status)
OWNER_ROUTES = [
    ("GET", "/api/v1/me", None, 200),
    ("PUT", "/api/v1/me/mails", {"muted": ["digest"]}, 200),
    ("GET", "/api/v1/reference-photos", None, 200),
    ("GET", "/api/v1/reference-photos/{alice_ref}/thumbnail", None, 200),
    ("GET", "/api/v1/friends", None, 200),
    ("POST", "/api/v1/friends", {"name": "Eve", "email": "eve@example.org"}, 201),
    ("GET", "/api/v1/friends/{alice_friend}/matches", None, 200),
    ("GET", "/api/v1/matches/{alice_match}/thumbnail", None, 200),
    ("GET", "/api/v1/matches/{alice_match}/face", None, 200),
    ("POST", "/api/v1/friends/{alice_friend}/checklist/send", None, 422),  # nothing confirmed
    (
        "POST",
        "/api/v1/friends/{alice_friend}/matches/review",
        {"decision": "confirmed", "band": "possible"},
        200,
    ),
    ("POST", "/api/v1/matches/{alice_match}/review", {"decision": "rejected"}, 200),
    ("DELETE", "/api/v1/friends/{alice_friend}/matches/review", None, 200),
    ("DELETE", "/api/v1/matches/{alice_match}/review", None, 200),
    ("POST", "/api/v1/match-groups/{alice_group}/review", {"decision": "rejected"}, 200),
    ("DELETE", "/api/v1/match-groups/{alice_group}/review", None, 200),
    ("DELETE", "/api/v1/reference-photos/{alice_ref}", None, 204),
    ("POST", "/api/v1/auth/confirm/resend", None, 409),  # confirmed already
    ("POST", "/api/v1/owner-invitations", {"email": "erin@example.org"}, 202),
    ("POST", "/api/v1/friends/{alice_spare}/resend", None, 202),
    ("DELETE", "/api/v1/friends/{alice_spare}", None, 204),
    ("GET", "/api/v1/circles/{alice_circle}", None, 200),
    ("POST", "/api/v1/circles/{alice_circle}/members", {"email": "ben@example.org"}, 202),
    ("POST", "/api/v1/circles", {"name": "Another"}, 409),  # she is in one already
    ("POST", "/api/v1/circles/join", {"token": WRONG}, 404),
    ("DELETE", "/api/v1/circles/{alice_circle}/members/{alice_id}", None, 204),  # she leaves
    ("DELETE", "/api/v1/me", None, 204),
]
OWN_OBJECT = (
    "alice_ref",
    "alice_friend",
    "alice_match",
    "alice_group",
    "alice_spare",
    "alice_circle",
)
# The admin's routes (alice's: the first account), on another owner (`{owner}`): 404 to bob,
# even on his own account, as if they did not exist.
ADMIN_ROUTES = [
    ("GET", "/api/v1/admin/reports", None, 200),
    ("GET", "/api/v1/admin/frozen-owners", None, 200),
    ("POST", "/api/v1/admin/owners/{owner}/clear", None, 200),
    ("DELETE", "/api/v1/admin/owners/{owner}", None, 204),
]


def _call(world: World, method: str, path: str, body: object, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    url = path.format(owner=world.ids["bob_id"], **world.ids)
    return world.client.request(method, url, json=body, headers=headers)


def test_it_shows_bob_nothing_of_alices(world: World) -> None:
    for method, path, body, _ in OWNER_ROUTES:
        if any(f"{{{name}}}" in path for name in OWN_OBJECT):
            answer = _call(world, method, path, body, world.bob)
            assert answer.status_code == 404, (method, path, answer.text)
    # Bob's own lists hold nothing of alice's.
    friends = world.client.get("/api/v1/friends", headers=world.bob).json()
    assert [f["id"] for f in friends] == [world.ids["bob_friend"]]


def test_it_shows_bob_no_admin_route(world: World) -> None:
    for method, path, body, _ in ADMIN_ROUTES:
        for owner in (world.ids["alice_id"], world.ids["bob_id"]):
            url = path.format(owner=owner)
            answer = world.client.request(method, url, json=body, headers=world.bob)
            assert answer.status_code == 404, (method, url, answer.text)
            assert answer.json() == {"detail": "Not Found"}  # as for a route that is not there


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": f"Bearer {WRONG}"}, {"Authorization": "Basic YWxpY2U6eA=="}]
)
def test_it_tells_charlie_to_log_in(world: World, headers: dict[str, str]) -> None:
    for method, path, body, _ in OWNER_ROUTES + ADMIN_ROUTES:
        answer = _call(world, method, path, body, headers)
        assert answer.status_code == 401, (method, path, answer.text)
    upload = world.client.post(
        "/api/v1/reference-photos", headers=headers, files={"file": ("a.jpg", _tiny_jpeg())}
    )
    assert upload.status_code == 401


FRIEND_ROUTES = [
    ("POST", "/api/v1/invites/{token}/consent", {"accept": True}),
    ("POST", "/api/v1/invites/{token}/profiles", {"url": "https://example.org/@x"}),
    ("GET", "/api/v1/invites/{token}/checklist", None),
    ("POST", "/api/v1/invites/{token}/checklist/{alice_match}", {"status": "keep"}),
    ("GET", "/api/v1/invites/{token}/checklist/{alice_match}/thumbnail", None),
    ("GET", "/checklist/{token}", None),
    ("POST", "/checklist/{token}/items/{alice_match}", None),
    ("GET", "/unsubscribe/{token}", None),
    ("POST", "/unsubscribe/{token}", None),
    ("POST", "/invite/{token}/consent", None),
    ("POST", "/invite/{token}/share", None),
    ("POST", "/invite/{token}/profiles", None),
    ("GET", "/api/v1/invites/{token}/scans", None),
    ("GET", "/api/v1/invites/{token}/scans/{alice_scan}", None),
    ("POST", "/api/v1/invites/{token}/exports", None),
    ("OPTIONS", "/api/v1/invites/{token}/uploads", None),
    ("POST", "/api/v1/invites/{token}/uploads", None),
    ("GET", "/api/v1/invites/{token}/uploads/{upload}", None),
    ("PATCH", "/api/v1/invites/{token}/uploads/{upload}", None),
    ("DELETE", "/api/v1/invites/{token}/uploads/{upload}", None),
    ("POST", "/api/v1/invites/{token}/export-reminder", None),
    ("POST", "/invite/{token}/export-reminder", None),
    ("GET", "/invite/{token}", None),
    ("GET", "/invite/{token}/share", None),
    ("GET", "/invite/{token}/faces/{alice_ref}", None),
    ("POST", "/api/v1/invites/{token}/report", {"reason": "I don't know this person"}),
    ("GET", "/invite/{token}/report", None),
    ("POST", "/invite/{token}/report", None),
]


def _friend_call(world: World, method: str, path: str, body: object, token: str):  # type: ignore[no-untyped-def]
    """Pages get a form with a valid CSRF token (charlie can have one from any page); the
    JSON API gets its body: only the invitation token is wrong or someone else's."""
    url = path.format(token=token, upload="an-upload", **world.ids)
    if url.startswith("/api/"):
        return world.client.request(method, url, json=body)
    world.client.get("/login")
    form = {
        "csrf_token": world.client.cookies.get("csrf") or "",
        "status": "keep",
        "accept": "yes",
        "url": "https://example.org/@x",
    }
    return world.client.request(method, url, data=form if method == "POST" else None)


def test_it_refuses_a_wrong_invitation_token(world: World) -> None:
    for method, path, body in FRIEND_ROUTES:
        answer = _friend_call(world, method, path, body, WRONG)
        assert answer.status_code == 404, (method, path, answer.text)


def test_it_refuses_a_wrong_confirmation_token(world: World) -> None:
    answer = world.client.post("/api/v1/auth/confirm", json={"token": WRONG})
    assert answer.status_code == 404
    assert world.client.get(f"/confirm/{WRONG}").status_code == 404
    # Nor is an invitation token, or a log-in token, a confirmation token.
    for token in (world.ids["alice_token"], world.alice["Authorization"].split()[1]):
        assert world.client.post("/api/v1/auth/confirm", json={"token": token}).status_code == 404


def test_it_keeps_one_friends_token_away_from_another_owners_objects(world: World) -> None:
    for method, path, body in FRIEND_ROUTES:
        if "{alice_" in path:
            answer = _friend_call(world, method, path, body, str(world.ids["bob_token"]))
            assert answer.status_code == 404, (method, path, answer.text)


def test_it_lets_no_friend_report_an_owner_who_does_not_ask_them(world: World) -> None:
    # bob's friend names alice, who asks them nothing: she is neither reported nor frozen.
    token, alice_id = world.ids["bob_token"], world.ids["alice_id"]
    body = {"reason": "I don't know this person", "owner": alice_id}
    answer = world.client.post(f"/api/v1/invites/{token}/report", json=body)
    assert answer.status_code == 422
    browser = TestClient(world.client.app, follow_redirects=False)
    assert browser.get(f"/invite/{token}/report?owner={alice_id}").status_code == 404
    assert world.client.get("/api/v1/me", headers=world.alice).json()["frozen"] is False


def test_it_asks_for_consent_before_any_upload(world: World) -> None:
    token = world.ids["alice_token"]
    answer = world.client.post(
        f"/api/v1/invites/{token}/exports", files={"file": ("x.zip", b"PK\x05\x06" + b"\0" * 18)}
    )
    assert answer.status_code == 403


def _all_routes(world: World) -> list[APIRoute]:
    """Every endpoint, including those of included routers (FastAPI nests them)."""
    found = []
    for route in world.client.app.routes:  # type: ignore[attr-defined]
        nested = getattr(route, "original_router", None)
        found += list(nested.routes) if nested is not None else [route]
    return [r for r in found if isinstance(r, APIRoute)]


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


FRIEND_PREFIXES = ("/api/", "/invite/", "/checklist/", "/unsubscribe/")


def test_it_covers_every_route_of_the_app(world: World) -> None:
    covered = {(m, _shape(p)) for m, p, *_ in OWNER_ROUTES + FRIEND_ROUTES}
    covered |= {(m, _shape(p)) for m, p, *_ in ADMIN_ROUTES}
    covered |= {
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/token"),
        ("POST", "/api/v1/auth/confirm"),
        ("POST", "/api/v1/reference-photos"),
    }
    api = [r for r in _all_routes(world) if r.path.startswith(FRIEND_PREFIXES)]
    assert len(api) > 20
    missing = [(m, r.path) for r in api for m in r.methods if (m, _shape(r.path)) not in covered]
    assert missing == []


# --- pages: the same three people, with cookies instead of bearer tokens ----------------------

PAGE_ROUTES = [
    ("GET", "/friends/{alice_friend}"),
    ("GET", "/friends/{alice_friend}/groups/{alice_group}"),
    ("POST", "/friends/{alice_friend}/groups/{alice_group}/review"),
    ("POST", "/friends/{alice_friend}/groups/{alice_group}/review/undo"),
    ("POST", "/matches/{alice_match}/review"),
    ("POST", "/matches/{alice_match}/review/undo"),
    ("POST", "/reference-photos/{alice_ref}/delete"),
    ("POST", "/friends/{alice_friend}/review-all"),
    ("POST", "/friends/{alice_friend}/review-all/undo"),
    ("POST", "/friends/{alice_friend}/checklist/send"),
    ("POST", "/friends/{alice_friend}/resend"),
    ("POST", "/friends/{alice_friend}/revoke"),
    ("POST", "/circles/{alice_circle}/members"),
    ("POST", "/circles/{alice_circle}/members/{alice_id}/remove"),
]
PAGES_FOR_ANYONE_LOGGED_IN = [
    ("GET", "/account"),
    ("POST", "/friends"),
    ("POST", "/reference-photos"),
    ("POST", "/owner-invitations"),
    ("POST", "/confirm/resend"),
    ("POST", "/account/delete"),
    ("GET", "/circle"),
    ("POST", "/circle"),
    ("POST", "/account/mails"),
]
ADMIN_PAGES = [
    ("GET", "/admin"),
    ("POST", "/admin/owners/{owner_id}/clear"),
    ("POST", "/admin/owners/{owner_id}/delete"),
]


def _browser(world: World, email: str | None) -> tuple[TestClient, str]:
    """A separate cookie jar, logged in as `email` (or nobody); returns it and its CSRF token."""
    browser = TestClient(world.client.app, follow_redirects=False)
    browser.get("/login")
    csrf = browser.cookies.get("csrf") or ""
    if email:
        answer = browser.post(
            "/login", data={"email": email, "password": "correct horse battery", "csrf_token": csrf}
        )
        assert answer.status_code == 303, answer.text
        browser.get("/")  # the CSRF token of the logged-in session
        csrf = browser.cookies.get("csrf") or ""
    return browser, csrf


def test_it_shows_bob_none_of_alices_pages(world: World) -> None:
    browser, csrf = _browser(world, "bob@example.org")
    for method, path in PAGE_ROUTES:
        url = path.format(**world.ids)
        form = {"csrf_token": csrf, "decision": "confirmed", "email": "x@example.org"}
        answer = browser.request(method, url, data=form)
        assert answer.status_code == 404, (method, url)
    # Nor through a friend of his own: alice's group is not found under bob's friend either.
    for method, path in PAGE_ROUTES:
        if "{alice_group}" in path:
            url = path.replace("{alice_friend}", "{bob_friend}").format(**world.ids)
            answer = browser.request(method, url, data={"csrf_token": csrf, "decision": "rejected"})
            assert answer.status_code == 404, (method, url)


def test_it_shows_bob_no_admin_page(world: World) -> None:
    browser, csrf = _browser(world, "bob@example.org")
    for method, path in ADMIN_PAGES:
        for owner in (world.ids["alice_id"], world.ids["bob_id"]):
            url = path.format(owner_id=owner)
            answer = browser.request(method, url, data={"csrf_token": csrf})
            assert answer.status_code == 404, (method, url)
    assert 'href="/admin"' not in browser.get("/").text


def test_it_sends_charlie_to_log_in(world: World) -> None:
    browser, csrf = _browser(world, None)
    for method, path in PAGE_ROUTES + PAGES_FOR_ANYONE_LOGGED_IN + ADMIN_PAGES:
        url = path.format(owner_id=world.ids["bob_id"], **world.ids)
        answer = browser.request(
            method,
            url,
            data={
                "csrf_token": csrf,
                "decision": "confirmed",
                "name": "x",
                "email": "x@example.org",
            },
        )
        assert (answer.status_code, answer.headers.get("location")) == (303, "/login"), url


def test_it_covers_every_page_route(world: World) -> None:
    covered = {(m, p) for m, p in PAGE_ROUTES + PAGES_FOR_ANYONE_LOGGED_IN + ADMIN_PAGES}
    covered |= {
        ("GET", "/"),
        ("GET", "/signup"),
        ("POST", "/signup"),
        ("GET", "/confirm/{token}"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/logout"),
        # A link to join a circle: to log in first, then for the invited address only
        # (tests/test_circles.py).
        ("GET", "/circles/join/{token}"),
        ("POST", "/circles/join/{token}"),
    }  # open to everyone by design
    templated = {
        (
            m,
            r.path.replace("{reference_id}", "{alice_ref}")
            .replace("{friend_id}", "{alice_friend}")
            .replace("{match_id}", "{alice_match}")
            .replace("{group_id}", "{alice_group}")
            .replace("{circle_id}", "{alice_circle}")
            .replace("{member_id}", "{alice_id}"),
        )
        for r in _all_routes(world)
        if not r.path.startswith(FRIEND_PREFIXES) and r.path != "/healthz"
        for m in r.methods
    }
    assert len(templated) > 10
    assert templated - covered == set()


def test_it_lets_alice_use_every_owner_route(world: World) -> None:
    # Last: it ends by deleting bob's account (alice is the admin), then her own.
    for method, path, body, expected in ADMIN_ROUTES + OWNER_ROUTES:
        answer = _call(world, method, path, body, world.alice)
        assert answer.status_code == expected, (method, path, answer.text)
