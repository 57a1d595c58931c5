"""Bluesky profiles through the public AppView: the author's own posts with images (and videos'
cover pictures), never an account that asked not to be shown to logged-out people."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx

from service.ingest.errors import UnreadableLink
from service.ingest.fetch import Fetcher
from service.ingest.fields import as_dict, as_text, dicts, from_iso, web_url
from service.ingest.items import Provenance, post_key
from service.ingest.profiles.listing import ProfileListing, ProfilePhoto, fetch_json

_PROFILE_PATH = re.compile(r"^/profile/(?P<actor>[^/?#]+)")
_NO_LOGGED_OUT = "!no-unauthenticated"
_FILTERS = ("posts_with_media", "posts_with_video")  # the first leaves videos out
_ASKED_NOT = (
    "This Bluesky account asks not to be shown to people who are not logged in, so we do not "
    "read it; please share the photos another way."
)


def is_bluesky(link: httpx.URL) -> bool:
    return link.host in ("bsky.app", "www.bsky.app") and bool(_PROFILE_PATH.match(link.path))


def read(link: httpx.URL, fetcher: Fetcher) -> ProfileListing:
    """The profile's listing, once the AppView confirms the account exists and may be read."""
    match = _PROFILE_PATH.match(link.path)
    if match is None:
        raise UnreadableLink("This Bluesky link does not lead to a profile.")
    api = fetcher.options.bluesky_api.rstrip("/")
    profile = fetch_json(
        fetcher,
        f"{api}/xrpc/app.bsky.actor.getProfile",
        params={"actor": match["actor"]},
        not_found=f"There is no Bluesky account {match['actor']}; please check the link.",
        not_found_statuses=(400, 404),
    )
    if asks_not_to_be_shown(as_dict(profile)):
        raise UnreadableLink(_ASKED_NOT)
    did = as_text(as_dict(profile).get("did")) or match["actor"]
    handle = as_text(as_dict(profile).get("handle")) or did
    return ProfileListing(
        platform="bluesky",
        url=f"https://bsky.app/profile/{handle}",
        name=as_text(as_dict(profile).get("displayName")) or handle,
        options=fetcher.options,
        lister=partial(_photos, api, did),
    )


def asks_not_to_be_shown(actor: dict[str, Any]) -> bool:
    return any(label.get("val") == _NO_LOGGED_OUT for label in dicts(actor.get("labels")))


def _photos(api: str, did: str, fetcher: Fetcher) -> Iterator[ProfilePhoto]:
    for feed_filter in _FILTERS:
        cursor: str | None = None
        cursors: set[str] = set()
        while True:
            params = {"actor": did, "filter": feed_filter, "limit": "100"}
            page = as_dict(
                fetch_json(
                    fetcher,
                    f"{api}/xrpc/app.bsky.feed.getAuthorFeed",
                    params=params | ({"cursor": cursor} if cursor else {}),
                    not_found="This Bluesky account is gone.",
                    not_found_statuses=(400, 404),
                )
            )
            feed = list(dicts(page.get("feed")))
            for entry in feed:
                yield from photos_of_entry(entry, did)
            cursor = as_text(page.get("cursor"))
            if not feed or cursor is None or cursor in cursors:
                break
            cursors.add(cursor)


def photos_of_entry(entry: dict[str, Any], did: str) -> list[ProfilePhoto]:
    """The images of one feed entry, if it is the account's own post (not a repost)."""
    post = as_dict(entry.get("post"))
    author = as_dict(post.get("author"))
    if asks_not_to_be_shown(author):
        raise UnreadableLink(_ASKED_NOT)
    if entry.get("reason") is not None or author.get("did") != did:
        return []
    record = as_dict(post.get("record"))
    text = as_text(record.get("text"))
    photos = []
    for url, alt in _images(as_dict(post.get("embed"))):
        provenance = Provenance(
            "bluesky",
            post_url=_post_url(post, author),
            taken_at=from_iso(record.get("createdAt")) or from_iso(post.get("indexedAt")),
            caption=text or alt,
            post_key=post_key("bluesky", as_text(post.get("uri"))),  # at://<did>/...: the post
        )
        photos.append(ProfilePhoto(url, provenance))
    return photos


def _images(embed: dict[str, Any], depth: int = 0) -> Iterator[tuple[str, str | None]]:
    kind = str(embed.get("$type", ""))
    if kind.startswith("app.bsky.embed.images"):
        for image in dicts(embed.get("images")):
            url = web_url(image.get("fullsize")) or web_url(image.get("thumb"))
            if url:
                yield url, as_text(image.get("alt"))
    elif kind.startswith("app.bsky.embed.gallery"):
        for item in dicts(embed.get("items")):
            url = web_url(item.get("fullsize")) or web_url(item.get("thumbnail"))
            if url:
                yield url, as_text(item.get("alt"))
    elif kind.startswith("app.bsky.embed.video"):
        url = web_url(embed.get("thumbnail"))
        if url:
            yield url, as_text(embed.get("alt"))
    elif kind.startswith("app.bsky.embed.recordWithMedia") and depth == 0:
        yield from _images(as_dict(embed.get("media")), depth + 1)


def _post_url(post: dict[str, Any], author: dict[str, Any]) -> str | None:
    uri = as_text(post.get("uri")) or ""
    match = re.fullmatch(r"at://([^/]+)/app\.bsky\.feed\.post/([^/]+)", uri)
    if match is None:
        return None
    handle = as_text(author.get("handle"))
    # The app links by DID when a handle no longer verifies.
    who = handle if handle and handle != "handle.invalid" else match[1]
    return f"https://bsky.app/profile/{who}/post/{match[2]}"
