"""The one entry point for profile links: recognise the kind of link, check it can be read, and
hand back a listing whose photos are downloaded as they are scanned."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from service.ingest.errors import UnreadableLink
from service.ingest.fetch import Fetcher, FetchOptions
from service.ingest.items import PhotoItem
from service.ingest.profiles import bluesky, flickr, mastodon, web
from service.ingest.profiles.listing import ProfileListing

# Sites whose photos no public page or API gives out: their export is the way.
_EXPORT_ONLY = {
    "instagram.com": "Instagram",
    "facebook.com": "Facebook",
    "fb.com": "Facebook",
    "x.com": "X",
    "twitter.com": "X",
    "threads.net": "Threads",
    "threads.com": "Threads",
    "tiktok.com": "TikTok",
}


def read_profile(url: str, options: FetchOptions | None = None) -> ProfileListing:
    """The listing of a public profile: Bluesky (`https://bsky.app/profile/<handle>`),
    Mastodon-compatible (`https://<host>/@<user>`), Flickr (with an API key), or any other page
    as a web gallery. Asks the server as much as it takes to be sure the link can be read and
    raises UnreadableLink, with a message for the friend, when it cannot."""
    options = options or FetchOptions()
    link = _link(url, options)
    host = link.host.removeprefix("www.").removeprefix("m.")
    if host in _EXPORT_ONLY:
        name = _EXPORT_ONLY[host]
        raise UnreadableLink(
            f"{name} does not let us read photos from a profile link; please share your {name} "
            "data export instead."
        )
    with Fetcher(options) as fetcher:
        if bluesky.is_bluesky(link):
            return bluesky.read(link, fetcher)
        if flickr.is_flickr(link):
            return flickr.read(link, fetcher)
        if mastodon.account_of(link) is not None:
            listing = mastodon.read_if_mastodon(link, fetcher)
            if listing is not None:
                return listing
        return web.read(link, fetcher)


def iter_profile(url: str, options: FetchOptions | None = None) -> Iterator[PhotoItem]:
    """The photos of a public profile as PhotoItems keyed by image URL (see ProfileListing)."""
    yield from read_profile(url, options)


def _link(url: str, options: FetchOptions) -> httpx.URL:
    text = url.strip() if isinstance(url, str) else ""
    if text and "://" not in text:
        text = "https://" + text  # "bsky.app/profile/jane" as people type it
    try:
        link = httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as error:
        raise UnreadableLink("This is not a web link; please copy the whole address.") from error
    if link.scheme not in ("http", "https") or not link.host:
        raise UnreadableLink("Only web links (https://...) can be read; please copy the address.")
    if link.scheme == "http" and not options.allow_private:
        link = link.copy_with(scheme="https")  # plain http is never fetched from the internet
    return link
