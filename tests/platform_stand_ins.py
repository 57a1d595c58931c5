"""One loopback web server standing in for the platforms a friend's profile link is read from:
a Mastodon-compatible server, the Bluesky AppView and a plain web gallery page."""

from __future__ import annotations

from typing import Any

from tests.friend_exports import Photos
from tests.ingest.builders import as_json
from tests.ingest.conftest import Answer, Request, Site

MASTODON_ACCOUNT = "109000000000000001"
BLUESKY_DID = "did:plc:u5cwb2mwiv2bfq53cjufe6yn"
BLUESKY_PROFILE = "https://bsky.app/profile/jane.bsky.social"
GALLERY = "/albums/summer-2024"


def serve_platforms(site: Site, photos: Photos) -> None:
    serve_mastodon(site, photos)
    serve_bluesky(site, photos)
    serve_gallery(site, photos)


def serve_mastodon(site: Site, photos: Photos) -> None:
    """`/@jane`: a public post of the owner, a public one without them, and an unlisted one of
    the owner (kept out of public view by its author, so it is not scanned)."""
    site.json("/api/v1/instance", {"uri": "127.0.0.1", "version": "4.2.0", "title": "Local"})
    site.json(
        "/api/v1/accounts/lookup",
        {
            "id": MASTODON_ACCOUNT,
            "acct": "jane",
            "display_name": "Jane",
            "url": f"{site.url}/@jane",
        },
    )
    statuses = [
        _status(site, 1, "public", "<p>Low tide &amp; a pier</p>"),
        _status(site, 2, "public", "<p>The dogs</p>"),
        _status(site, 3, "unlisted", "<p>Quietly</p>"),
    ]
    site.json(f"/api/v1/accounts/{MASTODON_ACCOUNT}/statuses", statuses)
    site.file("/system/media/original/1.jpg", photos.owner)
    site.file("/system/media/original/2.jpg", photos.other)
    site.file("/system/media/original/3.jpg", photos.owner_again)


def _status(site: Site, number: int, visibility: str, content: str) -> dict[str, Any]:
    status_id = f"11223344556677889{number}"
    return {
        "id": status_id,
        "created_at": f"2024-05-1{number}T07:41:12.000Z",
        "visibility": visibility,
        "uri": f"{site.url}/users/jane/statuses/{status_id}",
        "url": f"{site.url}/@jane/{status_id}",
        "content": content,
        "reblog": None,
        "account": {"id": MASTODON_ACCOUNT, "username": "jane", "acct": "jane"},
        "media_attachments": [
            {
                "id": f"11223344556600000{number}",
                "type": "image",
                "url": f"{site.url}/system/media/original/{number}.jpg",
                "preview_url": f"{site.url}/system/media/small/{number}.jpg",
                "description": "Wet sand",
            }
        ],
    }


def serve_bluesky(site: Site, photos: Photos) -> None:
    """The AppView's profile and author feed: one post with two images, the owner in the first."""
    author = {"did": BLUESKY_DID, "handle": "jane.bsky.social", "displayName": "Jane", "labels": []}
    site.json("/xrpc/app.bsky.actor.getProfile", {**author, "postsCount": 1})
    images = {
        "$type": "app.bsky.embed.images#view",
        "images": [
            {
                "thumb": f"{site.url}/img/feed_thumbnail/plain/{BLUESKY_DID}/{cid}@jpeg",
                "fullsize": f"{site.url}/img/feed_fullsize/plain/{BLUESKY_DID}/{cid}@jpeg",
                "alt": alt,
            }
            for cid, alt in (("bafkreiowner", "Us at the pier"), ("bafkreidogs", "The dogs"))
        ],
    }
    post = {
        "post": {
            "uri": f"at://{BLUESKY_DID}/app.bsky.feed.post/3k4duaz5vfs2b",
            "cid": "bafyreib2rxk3rh6kzwq",
            "author": author,
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "Low tide this morning",
                "createdAt": "2024-05-13T07:41:12.345Z",
            },
            "embed": images,
            "indexedAt": "2024-05-13T07:41:13.001Z",
            "labels": [],
        }
    }

    def feed(request: Request) -> Answer:
        with_media = request.query.get("filter") == "posts_with_media"
        page = {"feed": [post] if with_media and not request.query.get("cursor") else []}
        return Answer(200, as_json(page), {"Content-Type": "application/json"})

    site.route("/xrpc/app.bsky.feed.getAuthorFeed", feed)
    site.file(f"/img/feed_fullsize/plain/{BLUESKY_DID}/bafkreiowner@jpeg", photos.owner)
    site.file(f"/img/feed_fullsize/plain/{BLUESKY_DID}/bafkreidogs@jpeg", photos.other)


def serve_gallery(site: Site, photos: Photos) -> None:
    """A friend's own photo page, plus pages it cannot read: one gone, one without photos."""
    page = """<!doctype html><html><head>
      <title>Summer 2024 &amp; friends</title>
      <meta property="article:published_time" content="2024-06-01T12:00:00+02:00">
      <link rel="icon" href="/favicon.png">
    </head><body>
      <h1>Summer 2024</h1>
      <img src="/photos/lake-480.jpg" srcset="/photos/lake-480.jpg 480w, /photos/lake.jpg 1280w"
           alt="At the lake">
      <img src="/photos/dogs.jpg" alt="The dogs">
    </body></html>"""
    site.file(GALLERY, page.encode(), "text/html; charset=utf-8")
    site.file("/photos/lake.jpg", photos.owner)
    site.file("/photos/dogs.jpg", photos.other)
    site.file("/albums/empty", b"<html><body><p>Nothing yet</p></body></html>", "text/html")
    site.route("/albums/gone", Answer(404, b"not found"))
