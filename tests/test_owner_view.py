"""The owner sees their own face; the friend sees their own photo.

Alice (enrolled as Howard, from his labeled photos) is found in a friend's group photo: every
route of hers shows only the region around her face, every other face blurred beyond detection,
unless the friend chose at consent to show whole photos; the friend's checklist shows the whole
photo. Real photos, the real face engine, a real job consumer.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select

from service.app import create_app
from service.faces.engine import FaceEngine
from service.faces.thumbnails import OWNER_VIEW_SIDE, PHOTO_THUMBNAIL_SIDE, owner_view
from service.tables import Friend, Match
from tests.conftest import DATABASES, make_settings
from tests.test_api_journey import owner_token, wait_for_scan

BBT = Path("dev-bbt")
GROUP_PHOTO = "party/bbt1.jpg"  # Howard and three others
EXPORT = {
    GROUP_PHOTO: BBT / "_group_unlabeled/bbt1.jpg",
    "howard/howard4.png": BBT / "howard/howard4.png",
    "friends/sheldon4.png": BBT / "sheldon/sheldon4.png",
    "friends/penny4.png": BBT / "penny/penny4.png",
    "friends/raj4.png": BBT / "raj/raj4.png",
}
REFERENCES = [BBT / "howard/howard1.png", BBT / "howard/howard2.png"]
SAME_PERSON = 0.6


@dataclass
class World:
    app: FastAPI
    client: TestClient
    alice: dict[str, str]
    tokens: dict[str, str]  # friend name -> invitation token
    friend_ids: dict[str, int]
    references: np.ndarray

    def group_match(self, friend: str) -> dict[str, Any]:
        matches = self.client.get(
            f"/api/v1/friends/{self.friend_ids[friend]}/matches", headers=self.alice
        ).json()
        [match] = [m for m in matches if m["photo"] == GROUP_PHOTO]
        return match

    def row(self, match_id: int) -> Match:
        with Session(self.app.state.services.db) as session:
            return session.get_one(Match, match_id)


def _faces(engine: FaceEngine, data: bytes) -> list[np.ndarray]:
    """The encodings of every face the engine detects in a picture."""
    return [face.encoding for face in engine.scan_bytes(data)[1]]


def _long_side(data: bytes) -> int:
    return max(Image.open(io.BytesIO(data)).size)


@pytest.fixture(scope="module", params=DATABASES)
def world(
    request: pytest.FixtureRequest,
    faces_dir: Path,
    engine: FaceEngine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    """Alice invites Dana (shows the region around Alice's face only) and Erin (shows whole
    photos); both share the same export, with a group photo of Howard and three others."""
    folder = tmp_path_factory.mktemp("owner-view")
    settings = make_settings(folder, database=request.param)
    app = create_app(settings, consume=True)
    archive = folder / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, relative in EXPORT.items():
            z.write(faces_dir / relative, name)
    with TestClient(app) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        for path in REFERENCES:
            enrolled = client.post(
                "/api/v1/reference-photos",
                headers=alice,
                files={"file": (path.name, (faces_dir / path).read_bytes(), "image/png")},
            )
            assert enrolled.status_code == 201, enrolled.text
        tokens, ids = {}, {}
        for name, whole in (("Dana", False), ("Erin", True)):
            friend = client.post(
                "/api/v1/friends",
                headers=alice,
                json={"name": name, "email": f"{name.lower()}@example.org"},
            ).json()
            token = friend["invite_url"].rsplit("/", 1)[1]
            consent = {"accept": True, "show_whole_photos": whole} if whole else {"accept": True}
            assert client.post(f"/api/v1/invites/{token}/consent", json=consent).status_code == 200
            upload = {"file": ("export.zip", archive.read_bytes(), "application/zip")}
            queued = client.post(f"/api/v1/invites/{token}/exports", files=upload)
            assert queued.status_code == 202, queued.text
            assert wait_for_scan(client, token, queued.json()["scan_id"])["status"] == "done"
            tokens[name], ids[name] = token, friend["id"]
        references = np.array(
            [engine.reference((faces_dir / p).read_bytes())[1].encoding for p in REFERENCES]
        )
        yield World(app, client, alice, tokens, ids, references)


def test_it_shows_the_owner_only_their_own_face_from_a_group_photo(
    world: World, engine: FaceEngine
) -> None:
    match = world.group_match("Dana")
    for url in (match["thumbnail_url"], f"/api/v1/matches/{match['id']}/face?height=384"):
        picture = world.client.get(url, headers=world.alice)
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
        [face] = _faces(engine, picture.content)  # exactly one face: hers
        assert np.linalg.norm(world.references - face, axis=1).min() < SAME_PERSON


def _owner_pictures(world: World, match_id: int) -> dict[str, bytes]:
    """Every picture of the match that any route of the owner serves: the API's, and those the
    review pages embed (the friend's page and its group pages), fetched as the browser would."""
    browser = TestClient(world.app, follow_redirects=False)
    csrf = browser.get("/login").context["csrf_token"]  # type: ignore[attr-defined]
    login = {"csrf_token": csrf, "email": "alice@example.org", "password": "correct horse battery"}
    assert browser.post("/login", data=login).status_code == 303
    page = browser.get(f"/friends/{world.friend_ids['Dana']}").text
    groups = set(re.findall(r'href="(/friends/\d+/groups/\d+)"', page))
    pages = page + "".join(browser.get(group).text for group in groups)
    urls = set(re.findall(rf'src="(/api/v1/matches/{match_id}/[^"]+)"', pages))
    assert f"/api/v1/matches/{match_id}/thumbnail" in urls  # the card's picture is among them
    urls |= {f"/api/v1/matches/{match_id}/face?height={h}" for h in (32, 192, 384)}
    pictures = {url: browser.get(url.replace("&amp;", "&")) for url in urls}
    assert all(p.status_code == 200 for p in pictures.values()), pictures
    return {url: p.content for url, p in pictures.items()}


def test_it_gives_the_owner_no_whole_photo_through_any_route(
    world: World, engine: FaceEngine
) -> None:
    match = world.group_match("Dana")
    whole = world.row(match["id"]).thumbnail
    assert whole is not None and len(_faces(engine, whole)) >= 3  # others are there to hide
    pictures = _owner_pictures(world, match["id"])
    assert _long_side(pictures[f"/api/v1/matches/{match['id']}/thumbnail"]) <= OWNER_VIEW_SIDE
    for url, picture in pictures.items():
        assert picture != whole, url
        assert _long_side(picture) < _long_side(whole), url
        assert len(_faces(engine, picture)) <= 1, url  # no bystander can be detected


def test_it_shows_the_friend_their_whole_photo(world: World, engine: FaceEngine) -> None:
    match = world.group_match("Dana")
    confirmed = world.client.post(
        f"/api/v1/matches/{match['id']}/review", headers=world.alice, json={"decision": "confirmed"}
    )
    assert confirmed.status_code == 200
    token = world.tokens["Dana"]
    items = world.client.get(f"/api/v1/invites/{token}/checklist").json()["items"]
    [item] = [i for i in items if i["photo"] == GROUP_PHOTO]
    picture = world.client.get(item["thumbnail_url"])
    assert picture.status_code == 200
    assert _long_side(picture.content) == PHOTO_THUMBNAIL_SIDE
    assert len(_faces(engine, picture.content)) >= 3  # everyone in it: the photo is theirs


def test_it_shows_the_owner_whole_photos_when_the_friend_chose_to(
    world: World, engine: FaceEngine
) -> None:
    match = world.group_match("Erin")
    picture = world.client.get(match["thumbnail_url"], headers=world.alice).content
    assert picture == world.row(match["id"]).thumbnail
    assert len(_faces(engine, picture)) >= 3
    face = world.client.get(f"/api/v1/matches/{match['id']}/face", headers=world.alice).content
    [found] = _faces(engine, face)  # the face cut from the whole photo is still hers
    assert np.linalg.norm(world.references - found, axis=1).min() < SAME_PERSON


def test_it_keeps_the_owners_view_apart_from_the_whole_photo(
    world: World, engine: FaceEngine
) -> None:
    match = world.group_match("Dana")
    row = world.row(match["id"])
    assert row.owner_view is not None and row.owner_view_box is not None
    assert row.owner_view != row.thumbnail
    assert len(_faces(engine, row.owner_view)) == 1
    # What the owner is served is the crop column, byte for byte.
    served = world.client.get(match["thumbnail_url"], headers=world.alice).content
    assert served == row.owner_view
    with Session(world.app.state.services.db) as session:
        chose = dict(session.exec(select(Friend.name, Friend.shows_whole_photos)).all())
    assert chose == {"Dana": False, "Erin": True}


def test_it_asks_on_the_consent_page_whether_to_show_whole_photos(world: World) -> None:
    chosen = {}
    for name, ticked in (("Fay", True), ("Gus", False)):
        friend = world.client.post(
            "/api/v1/friends",
            headers=world.alice,
            json={"name": name, "email": f"{name.lower()}@example.org"},
        ).json()
        token = friend["invite_url"].rsplit("/", 1)[1]
        browser = TestClient(world.app, follow_redirects=False)
        page = browser.get(f"/invite/{token}")
        [checkbox] = re.findall(r"<input[^>]*show_whole_photos[^>]*>", page.text)
        assert "checked" not in checkbox  # the owner sees only their own face unless ticked
        form = {"csrf_token": page.context["csrf_token"], "accept": "yes"}  # type: ignore[attr-defined]
        if ticked:
            form["show_whole_photos"] = "yes"
        assert browser.post(f"/invite/{token}/consent", data=form).status_code == 303
        with Session(world.app.state.services.db) as session:
            chosen[name] = session.get_one(Friend, friend["id"]).shows_whole_photos
    assert chosen == {"Fay": True, "Gus": False}


# Group photos, some with neighbours so close that an unblurred view would show two or three
# faces (the bald guys, the dinner parties), one with two faces overlapping (2008_002079).
CROWDS = ("dev-bbt/_group_unlabeled", "dev/_dlib_bald_guys", "dev/_dlib_voc_snapshots")


def test_it_blurs_every_other_face_in_each_owner_view(engine: FaceEngine, faces_dir: Path) -> None:
    """Straight on the face engine: each face of every group photo gets a view holding that face
    and no other detectable one."""
    for path in sorted(p for crowd in CROWDS for p in (faces_dir / crowd).glob("*.jpg")):
        photo, faces = engine.scan_bytes(path.read_bytes())
        assert len(faces) >= 2, path
        boxes = [face.box for face in faces]
        for i, face in enumerate(faces):
            view = owner_view(photo, face.box, boxes[:i] + boxes[i + 1 :])
            assert _long_side(view.jpeg) <= OWNER_VIEW_SIDE
            [found] = _faces(engine, view.jpeg)
            assert np.linalg.norm(found - face.encoding) < SAME_PERSON, (path.name, i)
