"""Mastodon-compatible profiles read from a local server imitating Mastodon's API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.ingest.errors import PhotoReadError, UnreadableLink
from service.ingest.fetch import FetchOptions
from service.ingest.profiles import read_profile
from service.ingest.profiles.mastodon import photos_of_status
from tests.ingest.builders import as_json, jpeg, utc
from tests.ingest.conftest import Answer, Request, Site

ACCOUNT = "109000000000000001"
STATUSES = f"/api/v1/accounts/{ACCOUNT}/statuses"


def options(site: Site, **more: Any) -> FetchOptions:
    return FetchOptions(allow_private=True, connect_timeout=2, read_timeout=2, **more)


def status(
    site: Site, number: int, visibility: str = "public", kind: str = "image"
) -> dict[str, Any]:
    return {
        "id": f"11223344556677889{number}",
        "created_at": f"2024-05-1{number}T07:41:12.000Z",
        "visibility": visibility,
        "url": f"{site.url}/@jane/11223344556677889{number}",
        "uri": f"{site.url}/users/jane/statuses/11223344556677889{number}",
        "content": f"<p>Low tide number {number}</p>",
        "reblog": None,
        "account": {"id": ACCOUNT, "username": "jane"},
        "media_attachments": [
            {
                "type": kind,
                "url": f"{site.url}/media/original/{number}.{'mp4' if kind != 'image' else 'jpg'}",
                "preview_url": f"{site.url}/media/small/{number}.jpg",
                "description": "Wet sand",
            },
            {"type": "audio", "url": f"{site.url}/media/original/{number}.mp3"},
        ],
    }


def mastodon(site: Site) -> None:
    site.json("/api/v1/instance", {"uri": "127.0.0.1", "version": "4.2.0", "title": "Local"})
    site.json(
        "/api/v1/accounts/lookup",
        {"id": ACCOUNT, "acct": "jane", "display_name": "Jane", "url": f"{site.url}/@jane"},
    )
    for number in range(1, 6):
        site.file(f"/media/original/{number}.jpg", jpeg(number))
        site.file(f"/media/small/{number}.jpg", jpeg(10 + number))


def paged(site: Site, reset_in: float = 0.0) -> None:
    """Two pages joined by Link headers; the first spends the rate limit until `reset_in`."""
    reset_at = datetime.now(UTC) + timedelta(seconds=reset_in)
    first_page = [status(site, 1), status(site, 2, "unlisted"), status(site, 3, kind="video")]
    second_page = [status(site, 4), status(site, 5, "private")]

    def statuses(request: Request) -> Answer:
        if datetime.now(UTC) < reset_at and request.query.get("max_id"):
            return Answer(429, b'{"error": "Too many requests"}')
        if request.query.get("max_id") == "112233445566778893":
            return Answer(
                200, as_json(second_page), {"Link": f'<{site.url}{STATUSES}?min_id=4>; rel="prev"'}
            )
        headers = {
            "Link": f'<{site.url}{STATUSES}?only_media=true&max_id=112233445566778893>; rel="next"',
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0" if reset_in else "299",
            "X-RateLimit-Reset": reset_at.isoformat().replace("+00:00", "Z"),
        }
        return Answer(200, as_json(first_page), headers)

    site.route(STATUSES, statuses)


def test_it_reads_public_media_posts_page_by_page(site: Site) -> None:
    mastodon(site)
    paged(site)
    listing = read_profile(f"{site.url}/@jane", options(site))
    assert (listing.platform, listing.name) == ("mastodon", "Jane")
    photos = [(item, item.read()) for item in listing]
    assert [item.key for item, _ in photos] == [
        f"{site.url}/media/original/1.jpg",
        f"{site.url}/media/small/3.jpg",  # a video is scanned through its still preview
        f"{site.url}/media/original/4.jpg",
    ]
    first, data = photos[0]
    assert data == jpeg(1)
    assert first.post_url == f"{site.url}/@jane/112233445566778891"
    assert (first.taken_at, first.caption) == (utc(2024, 5, 11, 7, 41, 12), "Low tide number 1")
    asked = site.asked(STATUSES)[0].query
    assert (asked["only_media"], asked["exclude_reblogs"]) == ("true", "true")
    keys = [item.post_key for item, _ in photos]
    assert keys[0] == f"mastodon:{site.url}/users/jane/statuses/112233445566778891"
    assert len(set(keys)) == 3  # three posts
    assert site.asked("/api/v1/accounts/lookup")[0].query == {"acct": "jane"}


def test_it_gives_the_pictures_of_one_status_one_post_key(site: Site) -> None:
    two = status(site, 1)
    two["media_attachments"] = [
        {"type": "image", "url": f"{site.url}/media/original/{n}.jpg"} for n in (1, 2)
    ]
    photos = photos_of_status(two)
    assert [photo.url for photo in photos] == [f"{site.url}/media/original/{n}.jpg" for n in (1, 2)]
    assert {photo.provenance.post_key for photo in photos} == {
        f"mastodon:{site.url}/users/jane/statuses/112233445566778891"
    }


def test_it_waits_for_the_rate_limit_to_reset(site: Site) -> None:
    mastodon(site)
    paged(site, reset_in=1.0)
    started = time.monotonic()
    keys = [item.key for item in read_profile(f"{site.url}/@jane", options(site))]
    assert len(keys) == 3
    assert time.monotonic() - started >= 0.9
    second_page = [request for request in site.asked(STATUSES) if request.query.get("max_id")]
    assert len(second_page) == 1  # asked once, after the reset, never refused


def test_it_gives_up_when_the_server_asks_for_too_long_a_wait(site: Site) -> None:
    mastodon(site)
    paged(site, reset_in=600)
    items = iter(read_profile(f"{site.url}/@jane", options(site, max_rate_wait=1)))
    with pytest.raises(UnreadableLink, match="try again later"):
        list(items)


def test_it_reports_a_photo_taken_down_since_and_goes_on(site: Site) -> None:
    mastodon(site)
    paged(site)
    site.route("/media/original/1.jpg", Answer(404))
    outcomes: list[str | bool] = []
    for item in read_profile(f"{site.url}/@jane", options(site)):
        try:
            outcomes.append(item.read() is not None)
        except PhotoReadError as error:
            outcomes.append(str(error))
    assert outcomes == [
        "This photo is no longer online; it may have been taken down already.",
        True,
        True,
    ]


def test_it_refuses_an_account_the_server_does_not_know(site: Site) -> None:
    mastodon(site)
    site.route("/api/v1/accounts/lookup", Answer(404, b'{"error": "Record not found"}'))
    with pytest.raises(UnreadableLink, match="could not find @nobody"):
        read_profile(f"{site.url}/@nobody", options(site))


def test_it_refuses_a_server_that_shows_nothing_to_logged_out_people(site: Site) -> None:
    mastodon(site)
    site.route(
        "/api/v1/accounts/lookup",
        Answer(401, b'{"error": "This API requires an authenticated user"}'),
    )
    with pytest.raises(UnreadableLink, match="logged in"):
        read_profile(f"{site.url}/@jane", options(site))


def test_it_reads_an_at_link_on_another_server_as_a_web_page(site: Site) -> None:
    page = '<html><head><title>Jane</title></head><body><img src="/p/1.jpg" alt="me"></body></html>'
    site.file("/@jane", page.encode(), "text/html; charset=utf-8")
    site.file("/p/1.jpg", jpeg(1))
    listing = read_profile(f"{site.url}/@jane", options(site))
    assert listing.platform == "web"
    assert [(item.key, item.caption, item.read()) for item in listing] == [
        (f"{site.url}/p/1.jpg", "me", jpeg(1))
    ]
