"""A photo's second face near the owner, through the JSON API with real faces: a person is
proposed once a photo, and when the owner says that face is not them, the photo's other face is
asked about instead (service/standby.py)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select

from service.app import create_app
from service.config import Settings
from service.tables import StandbyFace
from tests import test_ingest_api, test_match_groups
from tests.ingest.conftest import Site
from tests.test_ingest_api import Service, enrolled_alice
from tests.test_scan_claims import race

service = test_ingest_api.service
photos = test_ingest_api.photos


def _pair(faces_dir: Path, left: str, right: str) -> bytes:
    """Two photos of the owner side by side: one photo with two faces near her references."""
    a, b = (Image.open(faces_dir / "dev/obama" / name).convert("RGB") for name in (left, right))
    height = min(a.height, b.height)
    a, b = (im.resize((im.width * height // im.height, height)) for im in (a, b))
    pair = Image.new("RGB", (a.width + b.width, height))
    pair.paste(a, (0, 0))
    pair.paste(b, (a.width, 0))
    out = io.BytesIO()
    pair.save(out, "JPEG", quality=92)
    return out.getvalue()


def _upload(service: Service, name: str, photo: bytes) -> tuple[int, list[dict]]:
    friend_id, _ = test_match_groups._upload(service, name, {"Photos/pair.jpg": photo})
    return friend_id, _matches(service, friend_id)


def _matches(service: Service, friend_id: int) -> list[dict]:
    listed = service.client.get(f"/api/v1/friends/{friend_id}/matches", headers=service.alice)
    assert listed.status_code == 200
    return sorted(listed.json(), key=lambda m: m["id"])


def _decide(service: Service, match_id: int, decision: str | None) -> None:
    url = f"/api/v1/matches/{match_id}/review"
    if decision is None:
        answer = service.client.delete(url, headers=service.alice)
    else:
        answer = service.client.post(url, headers=service.alice, json={"decision": decision})
    assert answer.status_code == 200, answer.text


def _waiting(service: Service) -> list[StandbyFace]:
    with Session(service.client.app.state.services.db) as session:  # type: ignore[attr-defined]
        return list(session.exec(select(StandbyFace)))


def test_a_group_decision_asks_about_no_second_face_of_the_same_group(
    service: Service, faces_dir: Path
) -> None:
    # (This test and the next leave nothing rejected: a rejected face keeps its look-alikes, the
    # owner's other photos here, out of the later scans of this module.)
    friend_id, [front] = _upload(service, "Cy", _pair(faces_dir, "obama1.jpg", "obama-720p.jpg"))
    assert front["photo"] == "Photos/pair.jpg" and front["review"] == "pending"
    group = front["group"]
    decided = service.client.post(
        f"/api/v1/match-groups/{group}/review", headers=service.alice, json={"decision": "rejected"}
    )
    assert decided.status_code == 200 and [m["id"] for m in decided.json()] == [front["id"]]
    # Both faces are the owner's, one look-alike group: "not me" for the group is for both.
    assert [m["review"] for m in _matches(service, friend_id)] == ["rejected"]
    undone = service.client.delete(f"/api/v1/match-groups/{group}/review", headers=service.alice)
    assert undone.status_code == 200
    assert [m["review"] for m in _matches(service, friend_id)] == ["pending"]


def test_not_me_for_all_the_rest_asks_about_the_second_faces_and_undo_takes_them_back(
    service: Service, faces_dir: Path
) -> None:
    friend_id, [front] = _upload(service, "Dee", _pair(faces_dir, "obama-480p.jpg", "obama2.jpg"))
    url = f"/api/v1/friends/{friend_id}/matches/review"
    decided = service.client.post(url, headers=service.alice, json={"decision": "rejected"})
    assert decided.status_code == 200 and [m["id"] for m in decided.json()] == [front["id"]]
    assert [m["review"] for m in _matches(service, friend_id)] == ["rejected", "pending"]
    undone = service.client.delete(url, headers=service.alice)
    assert undone.status_code == 200 and [m["id"] for m in undone.json()] == [front["id"]]
    assert [m["review"] for m in _matches(service, friend_id)] == ["pending"]


def test_not_me_asks_about_the_photos_other_face_and_undo_takes_it_back(
    service: Service, faces_dir: Path
) -> None:
    pair = _pair(faces_dir, "obama2.jpg", "obama3.jpg")
    friend_id, [front] = _upload(service, "Ana", pair)
    assert len([w for w in _waiting(service) if w.match_id == front["id"]]) == 1

    _decide(service, front["id"], "rejected")
    _decide(service, front["id"], "rejected")  # sent twice: one face steps in, once
    first, second = _matches(service, friend_id)
    assert first["id"] == front["id"] and first["review"] == "rejected"
    assert second["photo"] == front["photo"] and second["review"] == "pending"
    assert second["box"] != front["box"] and second["distance"] >= front["distance"]

    _decide(service, front["id"], None)  # undo: the second face waits again
    assert [(m["id"], m["review"]) for m in _matches(service, friend_id)] == [
        (front["id"], "pending")
    ]
    _decide(service, front["id"], "confirmed")  # it is her: the photo is asked about once
    assert len(_matches(service, friend_id)) == 1

    _decide(service, front["id"], "rejected")  # she changes her mind
    _, again = _matches(service, friend_id)
    assert again["box"] == second["box"] and again["review"] == "pending"
    _decide(service, again["id"], "rejected")  # neither face: nothing more to ask
    assert [m["review"] for m in _matches(service, friend_id)] == ["rejected", "rejected"]
    _decide(service, again["id"], None)
    assert [m["review"] for m in _matches(service, friend_id)] == ["rejected", "pending"]

    # Another friend posts the same photo: the face she rejected is not proposed again, and the
    # photo is proposed by its other face at once.
    _, [other] = _upload(service, "Ben", pair)
    assert other["box"] == again["box"] and other["review"] == "pending"
    assert not [w for w in _waiting(service) if w.match_id == other["id"]]


@pytest.fixture
def fresh(settings: Settings, faces_dir: Path, tmp_path: Path) -> Iterator[Service]:
    """Alice alone, on each database: nothing rejected, no other friend's scan."""
    site = Site()
    try:
        with TestClient(create_app(settings, consume=True)) as client:
            yield Service(client, enrolled_alice(client, faces_dir), site, tmp_path)
    finally:
        site.close()


def test_not_me_sent_at_once_from_several_tabs_asks_about_the_other_face_once(
    fresh: Service, faces_dir: Path
) -> None:
    friend_id, [front] = _upload(fresh, "Flo", _pair(faces_dir, "obama2.jpg", "obama3.jpg"))
    url = f"/api/v1/matches/{front['id']}/review"
    answers = race(
        4, lambda: fresh.client.post(url, headers=fresh.alice, json={"decision": "rejected"})
    )
    assert [a.status_code for a in answers] == [200] * 4
    assert [m["review"] for m in _matches(fresh, friend_id)] == ["rejected", "pending"]
    assert len([w for w in _waiting(fresh) if w.stepped_in is not None]) == 1
