"""Bluesky profiles read from a local server imitating the public AppView."""

from __future__ import annotations

from typing import Any

import pytest

from service.ingest.errors import UnreadableLink
from service.ingest.fetch import FetchOptions
from service.ingest.profiles import read_profile
from tests.ingest.builders import as_json, jpeg, utc
from tests.ingest.conftest import Answer, Request, Site

DID = "did:plc:u5cwb2mwiv2bfq53cjufe6yn"
FEED = "/xrpc/app.bsky.feed.getAuthorFeed"
PROFILE = "/xrpc/app.bsky.actor.getProfile"


def options(site: Site) -> FetchOptions:
    return FetchOptions(allow_private=True, bluesky_api=site.url, connect_timeout=2, read_timeout=2)


def author(
    handle: str = "jane.bsky.social", labels: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {"did": DID, "handle": handle, "displayName": "Jane", "labels": labels or []}


def post(
    site: Site, rkey: str, embed: dict[str, Any], text: str = "", **more: Any
) -> dict[str, Any]:
    return {
        "post": {
            "uri": f"at://{DID}/app.bsky.feed.post/{rkey}",
            "author": more.pop("author", author()),
            "record": {
                "$type": "app.bsky.feed.post",
                "text": text,
                "createdAt": "2024-05-13T07:41:12.345Z",
            },
            "embed": embed,
            "indexedAt": "2024-05-13T07:41:13.001Z",
            "labels": [],
        },
        **more,
    }


def images(site: Site, *names: str) -> dict[str, Any]:
    return {
        "$type": "app.bsky.embed.images#view",
        "images": [
            {
                "thumb": f"{site.url}/img/thumb/{n}@jpeg",
                "fullsize": f"{site.url}/img/full/{n}@jpeg",
                "alt": f"alt {n}",
            }
            for n in names
        ],
    }


def appview(site: Site, profile_labels: list[dict[str, str]] | None = None) -> None:
    site.json(PROFILE, {**author(labels=profile_labels), "postsCount": 4})
    media_pages: dict[str | None, dict[str, Any]] = {
        None: {
            "cursor": "2024-05-13T07:41:12.345Z",
            "feed": [
                post(site, "3k4duaz5vfs2b", images(site, "a", "b"), "Low tide this morning"),
                post(
                    site,
                    "3k4repost",
                    images(site, "c"),
                    reason={"$type": "app.bsky.feed.defs#reasonRepost"},
                ),
            ],
        },
        "2024-05-13T07:41:12.345Z": {
            "cursor": "2024-05-01T00:00:00.000Z",
            "feed": [
                post(
                    site,
                    "3k4quoted",
                    {
                        "$type": "app.bsky.embed.recordWithMedia#view",
                        "record": {},
                        "media": images(site, "d"),
                    },
                    author=author("handle.invalid"),
                )
            ],
        },
        "2024-05-01T00:00:00.000Z": {"feed": []},
    }
    video = {
        "$type": "app.bsky.embed.video#view",
        "cid": "bafyvideo",
        "playlist": f"{site.url}/video/playlist.m3u8",
        "thumbnail": f"{site.url}/img/video/e@jpeg",
    }
    video_pages: dict[str | None, dict[str, Any]] = {
        None: {"feed": [post(site, "3k4video", video, "A clip")]}
    }

    def feed(request: Request) -> Answer:
        pages = media_pages if request.query["filter"] == "posts_with_media" else video_pages
        return Answer(
            200, as_json(pages[request.query.get("cursor")]), {"Content-Type": "application/json"}
        )

    site.route(FEED, feed)
    for name in "abcde":
        site.file(f"/img/full/{name}@jpeg", jpeg(ord(name)))
    site.file("/img/video/e@jpeg", jpeg(ord("e")))


def test_it_reads_a_profiles_own_image_posts_and_video_covers(site: Site) -> None:
    appview(site)
    listing = read_profile("https://bsky.app/profile/jane.bsky.social", options(site))
    assert (listing.platform, listing.url, listing.name) == (
        "bluesky",
        "https://bsky.app/profile/jane.bsky.social",
        "Jane",
    )
    found = [(item.key, item.post_url, item.caption, item.read()) for item in listing]
    post_url = "https://bsky.app/profile/jane.bsky.social/post/3k4duaz5vfs2b"
    assert found == [
        (f"{site.url}/img/full/a@jpeg", post_url, "Low tide this morning", jpeg(ord("a"))),
        (f"{site.url}/img/full/b@jpeg", post_url, "Low tide this morning", jpeg(ord("b"))),
        (
            f"{site.url}/img/full/d@jpeg",
            f"https://bsky.app/profile/{DID}/post/3k4quoted",
            "alt d",
            jpeg(ord("d")),
        ),
        (
            f"{site.url}/img/video/e@jpeg",
            "https://bsky.app/profile/jane.bsky.social/post/3k4video",
            "A clip",
            jpeg(ord("e")),
        ),
    ]  # the repost of someone else's picture is not among them
    assert all(item.taken_at == utc(2024, 5, 13, 7, 41, 12, 345000) for item in listing)
    keys = [item.post_key for item in listing]
    # The two pictures of the first post are one post; every other post is its own.
    assert keys[0] == keys[1] == f"bluesky:at://{DID}/app.bsky.feed.post/3k4duaz5vfs2b"
    assert len(set(keys)) == 3
    filters = [
        (r.query["actor"], r.query["filter"], r.query.get("cursor")) for r in site.asked(FEED)
    ]
    assert filters[:4] == [
        (DID, "posts_with_media", None),
        (DID, "posts_with_media", "2024-05-13T07:41:12.345Z"),
        (DID, "posts_with_media", "2024-05-01T00:00:00.000Z"),
        (DID, "posts_with_video", None),
    ]


def test_it_refuses_an_account_that_asks_not_to_be_shown_logged_out(site: Site) -> None:
    appview(site, profile_labels=[{"src": DID, "val": "!no-unauthenticated"}])
    with pytest.raises(UnreadableLink, match="not logged in"):
        read_profile("https://bsky.app/profile/jane.bsky.social", options(site))
    assert site.asked(FEED) == []  # not one post was asked for


def test_it_stops_when_the_label_shows_up_on_the_posts(site: Site) -> None:
    appview(site)
    labelled = author(labels=[{"val": "!no-unauthenticated"}])
    page = {"feed": [post(site, "3k4x", images(site, "a"), author=labelled)]}
    site.json(FEED, page)
    with pytest.raises(UnreadableLink, match="not logged in"):
        list(read_profile("https://bsky.app/profile/jane.bsky.social", options(site)))
    assert site.asked("/img/full/a@jpeg") == []


def test_it_refuses_a_handle_that_does_not_exist(site: Site) -> None:
    site.route(PROFILE, Answer(400, b'{"error": "InvalidRequest", "message": "Profile not found"}'))
    with pytest.raises(UnreadableLink, match=r"no Bluesky account nobody\.bsky\.social"):
        read_profile("bsky.app/profile/nobody.bsky.social", options(site))
