"""The review pages without JavaScript: one card per look-alike group, a group photo by photo,
the group's forms, "not me" for all asked about first, and every decision taken back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from service.app import create_app
from tests import review_world
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, Any]]:
    """130 matches for each of two friends: 63 in the owner's group (two pages of it), the rest
    in a second group, and four with no group."""
    settings = make_settings(tmp_path_factory.mktemp("review"))
    world = review_world.build(settings, matches=130, groups=2, ungrouped=4, friends=2)
    app = create_app(settings, consume=False)
    yield app, world
    app.state.services.db.dispose()


@pytest.fixture
def alice(built: tuple[FastAPI, Any]) -> TestClient:
    client = TestClient(built[0], follow_redirects=False)
    csrf = _csrf(client, "/login")
    answer = client.post(
        "/login",
        data={"csrf_token": csrf, "email": "alice@example.org", "password": review_world.PASSWORD},
    )
    assert answer.status_code == 303
    return client


def _context(response: Response) -> dict[str, Any]:
    context: dict[str, Any] = response.context  # type: ignore[attr-defined]
    return context


def _csrf(client: TestClient, page: str) -> str:
    token: str = _context(client.get(page))["csrf_token"]
    return token


def _reviews(client: TestClient, friend_id: int) -> dict[int, str]:
    return {m["id"]: m["review"] for m in client.get(f"/api/v1/friends/{friend_id}/matches").json()}


def test_it_shows_one_card_per_group_with_the_face_large_beside_the_owners(
    built: tuple[FastAPI, Any], alice: TestClient
) -> None:
    _, world = built
    friend = world.friend_ids[0]
    page = alice.get(f"/friends/{friend}")
    assert page.status_code == 200
    cards = _context(page)["cards"]
    assert [c.id for c in cards] == world.group_ids  # the owner's (larger, strong) group first
    owners = cards[0]
    assert len(owners.faces) == 63 and owners.elsewhere == 63  # the other friend's, decided too
    assert f'src="/api/v1/matches/{owners.face.id}/face"' in page.text
    assert 'width="192" height="192"' in page.text
    ref = re.search(r'src="/api/v1/reference-photos/(\d+)/thumbnail"', page.text)
    assert ref and alice.get(ref.group(0)[5:-1]).status_code == 200
    assert page.text.count('class="face-strip"') == 2
    assert page.text.count("/face?height=96") == 2 * 12  # a strip of twelve, then a count
    assert "and 50 more" in page.text
    assert f'action="/friends/{friend}/groups/{owners.id}/review"' in page.text
    assert f'href="/friends/{friend}/groups/{owners.id}"' in page.text
    assert "Your answer also decides 63 photos of this face shared by other friends." in page.text
    singles = _context(page)["singles"].matches  # no group: a card each, as before
    assert len(singles) == 4
    assert all(f'id="match-{m.id}"' in page.text for m in singles)
    assert page.text.count("<img") < 60  # 260 matches, and the page stays small


def test_it_decides_a_group_with_the_plain_form_and_changes_it(
    built: tuple[FastAPI, Any], alice: TestClient
) -> None:
    _, world = built
    friend, group = world.friend_ids[0], world.group_ids[1]
    action = f"/friends/{friend}/groups/{group}/review"
    answer = alice.post(action, data={"csrf_token": _csrf(alice, "/"), "decision": "rejected"})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/friends/{friend}#group-{group}"
    reviews = {**_reviews(alice, friend), **_reviews(alice, world.friend_ids[1])}
    assert {reviews[i] for i in world.match_ids[group]} == {"rejected"}
    page = alice.get(f"/friends/{friend}")
    card = re.search(
        rf'<article class="[^"]*group-card--rejected" id="group-{group}".*?</article>',
        page.text,
        re.S,
    )
    assert card and "Rejected: not you" in card.group(0) and "Change" in card.group(0)
    assert "This is me" not in card.group(0)  # decided: one line
    undo = alice.post(f"{action}/undo", data={"csrf_token": _csrf(alice, "/")})
    assert undo.status_code == 303
    reviews = {**_reviews(alice, friend), **_reviews(alice, world.friend_ids[1])}
    assert {reviews[i] for i in world.match_ids[group]} == {"pending"}


def test_it_refuses_a_group_form_without_its_csrf_token(
    built: tuple[FastAPI, Any], alice: TestClient
) -> None:
    _, world = built
    friend, group = world.friend_ids[0], world.group_ids[1]
    _csrf(alice, "/")
    answer = alice.post(f"/friends/{friend}/groups/{group}/review", data={"decision": "rejected"})
    assert answer.status_code == 403
    assert set(_reviews(alice, friend).values()) == {"pending"}


def test_it_answers_the_pages_script_with_the_card_to_put_in_place(
    built: tuple[FastAPI, Any], alice: TestClient
) -> None:
    _, world = built
    friend, group = world.friend_ids[0], world.group_ids[0]
    action = f"/friends/{friend}/groups/{group}/review"
    json = {"Accept": "application/json"}
    token = _csrf(alice, "/")
    answer = alice.post(action, data={"csrf_token": token, "decision": "confirmed"}, headers=json)
    assert answer.status_code == 200
    assert answer.json()["message"] == "126 photos confirmed as you."
    assert 'class="review-card group-card group-card--confirmed"' in answer.json()["card"]
    assert f'name="csrf_token" value="{token}"' in answer.json()["card"]
    undo = alice.post(f"{action}/undo", data={"csrf_token": token}, headers=json)
    assert undo.json()["message"] == "Undone: 126 photos wait for your review again."
    assert "group-card--pending" in undo.json()["card"]


def test_it_shows_a_group_photo_by_photo_fifty_at_a_time(
    built: tuple[FastAPI, Any], alice: TestClient
) -> None:
    _, world = built
    friend, group = world.friend_ids[0], world.group_ids[0]
    first = alice.get(f"/friends/{friend}/groups/{group}")
    assert _context(first)["photos"].total == 63
    assert len(_context(first)["photos"].matches) == 50
    assert 'rel="next"' in first.text and "Page 1 of 2" in first.text
    second = alice.get(f"/friends/{friend}/groups/{group}?page=2")
    ids = [m.id for m in _context(second)["photos"].matches]
    assert len(ids) == 13 and 'rel="prev"' in second.text
    answer = alice.post(
        f"/matches/{ids[0]}/review",
        data={"csrf_token": _csrf(alice, "/"), "decision": "confirmed", "view": "group", "page": 2},
    )
    assert answer.headers["location"] == f"/friends/{friend}/groups/{group}?page=2#match-{ids[0]}"
    undo = alice.post(
        f"/matches/{ids[0]}/review/undo",
        data={"csrf_token": _csrf(alice, "/"), "view": "group", "page": 2},
    )
    assert undo.status_code == 303 and _reviews(alice, friend)[ids[0]] == "pending"
    assert alice.get(f"/friends/{friend}/groups/{10**6}").status_code == 404


def test_it_asks_before_not_me_for_all_and_can_undo_it(
    built: tuple[FastAPI, Any], alice: TestClient
) -> None:
    _, world = built
    friend = world.friend_ids[1]
    form = {"csrf_token": _csrf(alice, "/"), "decision": "rejected"}
    ask = alice.post(f"/friends/{friend}/review-all", data=form)
    assert ask.status_code == 200
    assert ask.template.name == "review_all_confirm.html"  # type: ignore[attr-defined]
    assert "Mark 130 photos “not me”?" in ask.text and 'name="confirm" value="yes"' in ask.text
    assert set(_reviews(alice, friend).values()) == {"pending"}  # nothing decided yet
    done = alice.post(f"/friends/{friend}/review-all", data={**form, "confirm": "yes"})
    assert done.status_code == 303
    assert set(_reviews(alice, friend).values()) == {"rejected"}
    page = alice.get(f"/friends/{friend}")
    assert "Undo “Not me” for 130 photos at once" in page.text
    assert 'data-confirm="Mark all' not in page.text  # nothing waits: no bulk button
    undo = alice.post(f"/friends/{friend}/review-all/undo", data={"csrf_token": form["csrf_token"]})
    assert undo.status_code == 303
    assert set(_reviews(alice, friend).values()) == {"pending"}
    assert "Undo “Not me”" not in alice.get(f"/friends/{friend}").text


def test_it_serves_the_review_script_on_the_review_pages(
    built: tuple[FastAPI, Any], alice: TestClient, tmp_path: Path
) -> None:
    _, world = built
    page = alice.get(f"/friends/{world.friend_ids[0]}")
    assert '<script src="/static/review.js" defer></script>' in page.text
    assert "data-review-keys hidden" in page.text  # the keys are shown only once the script runs
    script = alice.get("/static/review.js")
    assert script.status_code == 200 and "aria-busy" in script.text
