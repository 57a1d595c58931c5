"""Verified removal against a loopback stand-in for a platform whose posts disappear."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.app import create_app
from service.config import Settings
from service.tables import Match, OutgoingMail, Scan, Source
from tests.conftest import make_settings
from tests.ingest.builders import jpeg
from tests.ingest.conftest import Answer, Request, Site
from tests.test_api_journey import owner_token
from tests.test_checklist import T0


class Platform:
    """A post page showing one image; the test takes the post down and puts it back."""

    def __init__(self, site: Site) -> None:
        self.site, self.post_up, self.image_fails = site, True, False
        site.route("/media/1.jpg", self._image)
        site.route("/@jane/1", self._post)

    def _image(self, request: Request) -> Answer:
        if self.image_fails:
            return Answer(503, b"busy")
        if request.headers.get("If-None-Match") == '"v1"':
            return Answer(304, b"", {"ETag": '"v1"'})
        return Answer(200, jpeg(1), {"Content-Type": "image/jpeg", "ETag": '"v1"'})

    def _post(self, request: Request) -> Answer:
        if not self.post_up:
            return Answer(404, b"gone")
        page = f'<html><head><meta property="og:image" content="{self.site.url}/media/1.jpg">'
        return Answer(200, page.encode(), {"Content-Type": "text/html"})


@pytest.fixture
def world(tmp_path) -> Iterator[tuple[TestClient, Settings, Site, int]]:  # type: ignore[no-untyped-def]
    site = Site()
    settings = make_settings(tmp_path, allow_private_fetch=True, verify_every="10s")
    with TestClient(create_app(settings, consume=False)) as client:
        owner_token(client, "alice@example.org", "Alice")
        friend = client.post(
            "/api/v1/friends",
            headers=owner_token(client, "a2@example.org", "A"),
            json={"name": "Dana", "email": "dana@example.org"},
        ).json()
        db = client.app.state.services.db  # type: ignore[attr-defined]
        with Session(db) as session:
            source = Source(
                owner_id=2, friend_id=friend["id"], kind="profile", label=f"{site.url}/@jane"
            )
            session.add(source)
            session.flush()
            scan = Scan(owner_id=2, friend_id=friend["id"], source_id=source.id, status="done")
            session.add(scan)
            session.flush()
            match = Match(
                owner_id=2,
                friend_id=friend["id"],
                scan_id=scan.id,
                photo=f"{site.url}/media/1.jpg",
                post_url=f"{site.url}/@jane/1",
                platform="mastodon",
                box_key="1,2,3,0",
                box=[1, 2, 3, 0],
                distance=0.4,
                band="strong",
                review="confirmed",
                sealed_encoding=b"-",
                next_check_at=T0,
            )
            session.add(match)
            session.commit()
            match_id = match.id or 0
        yield client, settings, site, match_id
    site.close()


def _check(client: TestClient, at: timedelta) -> None:
    client.app.state.services.jobs.run_due_work(now=T0 + at)  # type: ignore[attr-defined]


def _match(client: TestClient, match_id: int) -> Match:
    with Session(client.app.state.services.db) as session:  # type: ignore[attr-defined]
        match = session.get(Match, match_id)
        assert match is not None
        return match


def test_it_marks_a_photo_removed_once_its_post_is_gone(world) -> None:  # type: ignore[no-untyped-def]
    client, _, site, match_id = world
    platform = Platform(site)
    _check(client, timedelta(0))
    seen = _match(client, match_id)
    assert (seen.status, seen.verified_at, seen.check_etag) == ("open", None, '"v1"')
    assert seen.next_check_at == T0 + timedelta(seconds=10)

    _check(client, timedelta(seconds=5))  # not due yet: nothing asked
    assert len(site.asked("/media/1.jpg")) == 1

    _check(client, timedelta(seconds=10))  # due: a conditional request, answered 304
    assert site.asked("/media/1.jpg")[-1].headers.get("If-None-Match") == '"v1"'
    assert _match(client, match_id).status == "open"

    platform.post_up = False
    _check(client, timedelta(seconds=20))
    gone = _match(client, match_id)
    assert gone.status == "removed" and gone.verified_at == T0 + timedelta(seconds=20)
    api = client.get("/api/v1/friends/1/matches", headers=owner_token(client, "b@example.org", "B"))
    assert api.status_code == 404  # and nobody else can see it


def test_it_reopens_an_item_whose_photo_comes_back(world) -> None:  # type: ignore[no-untyped-def]
    client, _, site, match_id = world
    platform = Platform(site)
    platform.post_up = False
    _check(client, timedelta(0))
    assert _match(client, match_id).status == "removed"
    platform.post_up = True
    _check(client, timedelta(seconds=10))
    back = _match(client, match_id)
    assert back.status == "open" and back.verified_at is None
    with Session(client.app.state.services.db) as session:  # type: ignore[attr-defined]
        [mail] = session.exec(select(OutgoingMail).where(OutgoingMail.kind == "photo_back")).all()
    assert mail.to == "a2@example.org" and "/media/1.jpg" in mail.text


def test_it_backs_off_when_the_platform_fails(world) -> None:  # type: ignore[no-untyped-def]
    client, _, site, match_id = world
    platform = Platform(site)
    platform.image_fails = True
    _check(client, timedelta(0))
    first = _match(client, match_id)
    assert first.status == "open" and first.check_failures == 1
    assert first.next_check_at == T0 + timedelta(seconds=20)
    _check(client, timedelta(seconds=20))
    assert _match(client, match_id).next_check_at == T0 + timedelta(seconds=20 + 40)
