"""The page's script is answered with the card of a photo's second face when a "not me" brings it
in, and told to take it away when that is undone (service/standby.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from service.app import create_app
from service.tables import StandbyFace
from tests import review_world, test_review_pages
from tests.conftest import make_settings
from tests.test_review_pages import _csrf, _reviews

alice = test_review_pages.alice  # logged in to this module's world

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, Any]]:
    """Six matches in two groups; a second face waits behind each of the first two, the first's
    in the other group."""
    settings = make_settings(tmp_path_factory.mktemp("second-face-pages"))
    world = review_world.build(settings, matches=6, groups=2, waiting=2)
    app = create_app(settings, consume=False)
    with Session(app.state.services.db) as session:
        first = session.exec(select(StandbyFace).order_by(col(StandbyFace.id))).first()
        assert first is not None
        first.group_id = world.group_ids[1]
        session.add(first)
        session.commit()
    yield app, world
    app.state.services.db.dispose()


def test_a_second_face_of_another_group_is_told_of_but_not_shown_on_a_groups_page(
    built: tuple[FastAPI, Any],
    alice: TestClient,
) -> None:
    _, world = built
    friend = world.friend_ids[0]
    front = world.match_ids[world.group_ids[0]][0]
    token = _csrf(alice, "/")
    form = {"csrf_token": token, "decision": "rejected", "view": "group"}
    answer = alice.post(f"/matches/{front}/review", data=form, headers=JSON).json()
    assert answer["message"].endswith(
        "Another face in this photo looks like you: it is asked about next."
    )
    assert answer["more"] == [] and answer["gone"] == []
    assert len(_reviews(alice, friend)) == 7


def test_the_card_of_a_second_face_comes_with_the_answer_and_goes_with_the_undo(
    built: tuple[FastAPI, Any],
    alice: TestClient,
) -> None:
    _, world = built
    friend = world.friend_ids[0]
    front = world.match_ids[world.group_ids[1]][0]
    token = _csrf(alice, "/")
    before = set(_reviews(alice, friend))
    answer = alice.post(
        f"/matches/{front}/review", data={"csrf_token": token, "decision": "rejected"}, headers=JSON
    ).json()
    [added] = set(_reviews(alice, friend)) - before
    [card] = answer["more"]
    assert f'id="match-{added}"' in card and 'data-pending="true"' in card
    undo = alice.post(f"/matches/{front}/review/undo", data={"csrf_token": token}, headers=JSON)
    assert undo.json()["gone"] == [f"match-{added}"] and undo.json()["more"] == []
    assert added not in _reviews(alice, friend)
