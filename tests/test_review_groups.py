"""Deciding a look-alike group at once through the JSON API, and taking decisions back: alice
owns the matches (two friends share one group), bob is another owner who must reach none of it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session

from service.app import create_app
from service.tables import MatchGroup
from tests import review_world
from tests.test_api_journey import owner_token


@dataclass
class World:
    client: TestClient
    alice: dict[str, str]
    bob: dict[str, str]
    built: review_world.ReviewWorld

    def matches(self, friend_id: int) -> dict[int, dict[str, object]]:
        answer = self.client.get(f"/api/v1/friends/{friend_id}/matches", headers=self.alice)
        assert answer.status_code == 200
        return {m["id"]: m for m in answer.json()}

    def all_matches(self) -> dict[int, dict[str, object]]:
        return {k: v for f in self.built.friend_ids for k, v in self.matches(f).items()}

    def group(self, group_id: int) -> MatchGroup:
        with Session(self.client.app.state.services.db) as session:  # type: ignore[attr-defined]
            group = session.get(MatchGroup, group_id)
            assert group is not None
            return group


@pytest.fixture
def world(settings: object, tmp_path: Path) -> Iterator[World]:
    """Two friends of alice, six matches each: two in the first group, two in the second, two
    with no group."""
    built = review_world.build(settings, matches=6, groups=2, ungrouped=2, friends=2)  # type: ignore[arg-type]
    with TestClient(create_app(settings, consume=False)) as client:  # type: ignore[arg-type]
        answer = client.post(
            "/api/v1/auth/token",
            json={"email": built.owner_email, "password": review_world.PASSWORD},
        )
        alice = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        yield World(client, alice, owner_token(client, "bob@example.org", "Bob"), built)


def test_it_decides_a_whole_group_across_friends_and_undoes_it(world: World) -> None:
    group = world.built.group_ids[0]
    members = set(world.built.match_ids[group])
    answer = world.client.post(
        f"/api/v1/match-groups/{group}/review", json={"decision": "confirmed"}, headers=world.alice
    )
    assert answer.status_code == 200
    assert {m["id"] for m in answer.json()} == members and len(members) == 4
    matches = world.all_matches()
    assert {matches[i]["review"] for i in members} == {"confirmed"}
    others = set(matches) - members
    assert {matches[i]["review"] for i in others} == {"pending"}  # nothing else decided
    assert world.group(group).decision == "confirmed"

    undone = world.client.delete(f"/api/v1/match-groups/{group}/review", headers=world.alice)
    assert undone.status_code == 200
    assert {m["id"] for m in undone.json()} == members
    assert {m["review"] for m in undone.json()} == {"pending"}
    assert {m["review"] for m in world.all_matches().values()} == {"pending"}
    assert world.group(group).decision is None


def test_it_undoes_only_what_the_group_decision_decided(world: World) -> None:
    group = world.built.group_ids[0]
    first, second, *rest = world.built.match_ids[group]
    world.client.post(
        f"/api/v1/matches/{first}/review", json={"decision": "rejected"}, headers=world.alice
    )
    decided = world.client.post(
        f"/api/v1/match-groups/{group}/review", json={"decision": "confirmed"}, headers=world.alice
    ).json()
    assert first not in {m["id"] for m in decided}  # it was decided before, on its own
    world.client.post(
        f"/api/v1/matches/{second}/review", json={"decision": "rejected"}, headers=world.alice
    )
    undone = world.client.delete(f"/api/v1/match-groups/{group}/review", headers=world.alice)
    assert {m["id"] for m in undone.json()} == set(rest)
    matches = world.all_matches()
    assert matches[first]["review"] == "rejected" and matches[second]["review"] == "rejected"
    again = world.client.delete(f"/api/v1/match-groups/{group}/review", headers=world.alice)
    assert again.status_code == 200 and again.json() == []  # nothing left to undo


def test_it_keeps_bob_away_from_alices_groups(world: World) -> None:
    group = world.built.group_ids[0]
    for method, body in (("POST", {"decision": "rejected"}), ("DELETE", None)):
        answer = world.client.request(
            method, f"/api/v1/match-groups/{group}/review", json=body, headers=world.bob
        )
        assert answer.status_code == 404, answer.text
    assert {m["review"] for m in world.all_matches().values()} == {"pending"}
    assert world.group(group).decision is None


def test_it_puts_a_single_decision_back(world: World) -> None:
    match_id = world.built.match_ids[0][0]
    url = f"/api/v1/matches/{match_id}/review"
    world.client.post(url, json={"decision": "rejected"}, headers=world.alice)
    answer = world.client.delete(url, headers=world.alice)
    assert answer.status_code == 200 and answer.json()["review"] == "pending"
    assert world.client.delete(url, headers=world.bob).status_code == 404


def test_it_undoes_the_last_decision_for_all_of_a_friends_matches(world: World) -> None:
    friend = world.built.friend_ids[0]
    url = f"/api/v1/friends/{friend}/matches/review"
    strong = world.client.post(
        url, json={"decision": "confirmed", "band": "strong"}, headers=world.alice
    ).json()
    rest = world.client.post(url, json={"decision": "rejected"}, headers=world.alice).json()
    assert strong and rest
    undone = world.client.delete(url, headers=world.alice).json()
    assert {m["id"] for m in undone} == {m["id"] for m in rest}  # only the last one
    reviews = {i: m["review"] for i, m in world.matches(friend).items()}
    assert {reviews[m["id"]] for m in strong} == {"confirmed"}
    assert {reviews[m["id"]] for m in rest} == {"pending"}
    assert world.client.delete(url, headers=world.bob).status_code == 404


def test_it_crops_the_face_large_from_the_thumbnail(world: World) -> None:
    match_id = world.built.match_ids[world.built.group_ids[0]][0]
    answer = world.client.get(f"/api/v1/matches/{match_id}/face", headers=world.alice)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["cache-control"] == "private, max-age=3600"
    assert Image.open(io.BytesIO(answer.content)).size == (192, 192)
    small = world.client.get(f"/api/v1/matches/{match_id}/face?height=64", headers=world.alice)
    assert Image.open(io.BytesIO(small.content)).size == (64, 64)
    too_big = world.client.get(f"/api/v1/matches/{match_id}/face?height=5000", headers=world.alice)
    assert too_big.status_code == 422
    assert (
        world.client.get(f"/api/v1/matches/{match_id}/face", headers=world.bob).status_code == 404
    )
