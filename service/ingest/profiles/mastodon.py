"""Mastodon-compatible profiles (`https://<host>/@<user>` on a server answering /api/v1/instance):
the account's own public posts with media, page by page, at the pace the server asks for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx

from service.ingest.errors import UnreadableLink
from service.ingest.fetch import Fetcher, FetchError
from service.ingest.fields import as_dict, as_id, as_text, dicts, from_iso, html_to_text, web_url
from service.ingest.items import Provenance, post_key
from service.ingest.profiles.listing import ProfileListing, ProfilePhoto, fetch_json

_ACCOUNT_PATH = re.compile(r"^/@(?P<user>[\w.-]+)(?:@(?P<domain>[\w.-]+\.[a-z]{2,}))?(?:/|$)", re.I)
_NEXT = re.compile(r"<(?P<url>[^>]+)>\s*;\s*rel=\"?next\"?")
_PAGE = 40  # the most Mastodon gives at once


def account_of(link: httpx.URL) -> tuple[str, str | None] | None:
    """The user and domain a `/@user` or `/@user@domain` link names, if it is such a link."""
    match = _ACCOUNT_PATH.match(link.path)
    return (match["user"], match["domain"]) if match else None


def read_if_mastodon(link: httpx.URL, fetcher: Fetcher) -> ProfileListing | None:
    """The profile's listing, or None when the server is not Mastodon-compatible."""
    account = account_of(link)
    if account is None or not _is_mastodon(link, fetcher):
        return None
    user, domain = account
    base = f"{link.scheme}://{link.netloc.decode()}"
    acct = f"{user}@{domain}" if domain and domain.lower() != link.host else user
    found = as_dict(
        fetch_json(
            fetcher,
            f"{base}/api/v1/accounts/lookup",
            params={"acct": acct},
            not_found=(
                f"We could not find @{acct} on {link.host}; please check the link, or share a "
                "data export instead."
            ),
        )
    )
    account_id = as_id(found.get("id"))
    if account_id is None:
        raise UnreadableLink(f"{link.host} did not answer as a Mastodon server should.")
    return ProfileListing(
        platform="mastodon",
        url=web_url(found.get("url")) or str(link),
        name=as_text(found.get("display_name")) or as_text(found.get("acct")) or acct,
        options=fetcher.options,
        lister=partial(_photos, base, account_id),
    )


def _is_mastodon(link: httpx.URL, fetcher: Fetcher) -> bool:
    base = f"{link.scheme}://{link.netloc.decode()}"
    try:
        fetched = fetcher.get(
            f"{base}/api/v1/instance", max_bytes=fetcher.options.max_document_bytes
        )
    except FetchError as error:
        raise UnreadableLink(str(error)) from error
    instance = as_dict(fetched.json()) if fetched.status == 200 else {}
    return any(key in instance for key in ("uri", "domain")) and "version" in instance


def _photos(base: str, account_id: str, fetcher: Fetcher) -> Iterator[ProfilePhoto]:
    url: str | None = f"{base}/api/v1/accounts/{account_id}/statuses"
    params: dict[str, str] | None = {
        "only_media": "true",
        "exclude_reblogs": "true",
        "limit": str(_PAGE),
    }
    seen: set[str] = set()
    while url is not None:
        fetched_url, page, link = _page(fetcher, url, params)
        statuses = [s for s in dicts(page) if as_id(s.get("id")) not in seen]
        if not statuses:
            return
        for status in statuses:
            seen.add(as_id(status.get("id")) or "")
            if as_id(as_dict(status.get("account")).get("id")) in (None, account_id):
                yield from photos_of_status(status)
        url, params = _next_page(fetched_url, link, statuses, base)


def _page(fetcher: Fetcher, url: str, params: dict[str, str] | None) -> tuple[str, Any, str]:
    try:
        fetched = fetcher.get(url, params=params, max_bytes=fetcher.options.max_document_bytes)
    except FetchError as error:
        raise UnreadableLink(str(error)) from error
    if fetched.status != 200:
        raise UnreadableLink(
            f"The server stopped answering (status {fetched.status}); please try again later."
        )
    return fetched.url, fetched.json(), fetched.headers.get("link", "")


def _next_page(
    fetched_url: str, link: str, statuses: list[dict[str, Any]], base: str
) -> tuple[str | None, dict[str, str] | None]:
    """The next page: the Link header's `next` when there is one, on this server only."""
    match = _NEXT.search(link)
    try:
        if match:
            following = str(httpx.URL(fetched_url).join(match["url"]))
            return (following, None) if following.startswith(base + "/") else (None, None)
        last = as_id(statuses[-1].get("id"))
        if link or len(statuses) < _PAGE or last is None:
            return None, None  # a Link header without `next`, or a short page: the last one
        return str(httpx.URL(fetched_url).copy_set_param("max_id", last)), None
    except (httpx.InvalidURL, ValueError):
        return None, None


def photos_of_status(status: dict[str, Any]) -> list[ProfilePhoto]:
    """The pictures of one public post: images, and the still preview of videos and GIFs."""
    if status.get("visibility") != "public" or status.get("reblog") is not None:
        return []
    text = html_to_text(status.get("content"))
    photos = []
    for media in dicts(status.get("media_attachments")):
        kind = media.get("type")
        if kind == "image":
            url = web_url(media.get("url")) or web_url(media.get("remote_url"))
        elif kind in ("gifv", "video"):
            url = web_url(media.get("preview_url"))
        else:
            continue
        if url is None:
            continue  # still being processed on the server
        provenance = Provenance(
            "mastodon",
            post_url=web_url(status.get("url")) or web_url(status.get("uri")),
            taken_at=from_iso(status.get("created_at")),
            caption=text or as_text(media.get("description")),
            post_key=post_key("mastodon", web_url(status.get("uri")) or web_url(status.get("url"))),
        )
        photos.append(ProfilePhoto(url, provenance))
    return photos
