"""The one shape every source of photos is reduced to: a PhotoItem with its provenance."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Literal

Platform = Literal[
    "facebook", "instagram", "google_photos", "x", "mastodon", "bluesky", "flickr", "web", "other"
]

POST_KEY_LENGTH = 400  # as stored with a match

IMAGE_SUFFIXES = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".webp",
        ".heic",
        ".heif",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
    }
)


@dataclass(frozen=True)
class PhotoItem:
    """One photo found in a source, and where it was posted.

    `key` is the path inside the export (relative, with forward slashes) or the image URL of a
    profile scan; it is what a person recognises and what matches are reported under.
    `read` returns the photo's bytes; it is called at most once per item, when the photo is scanned.
    `post_key` is shared by the photos of one post (a carousel, a post with several pictures);
    None when the source knows no post, and then each photo is a post of its own.
    """

    key: str
    read: Callable[[], bytes] = field(repr=False, compare=False)
    platform: Platform = "other"
    post_url: str | None = None
    album: str | None = None
    taken_at: datetime | None = None
    caption: str | None = None
    post_key: str | None = None


@dataclass(frozen=True)
class Provenance:
    """Where a photo was posted, as far as its source says."""

    platform: Platform
    post_url: str | None = None
    album: str | None = None
    taken_at: datetime | None = None
    caption: str | None = None
    post_key: str | None = None

    def filled_from(self, other: Provenance) -> Provenance:
        """This provenance with its missing fields taken from another description of the photo."""
        names = [f.name for f in fields(self)]
        gaps = {name: getattr(other, name) for name in names if getattr(self, name) is None}
        return replace(self, **gaps)

    def item(self, key: str, read: Callable[[], bytes]) -> PhotoItem:
        """The PhotoItem of the photo at `key`, with this provenance."""
        return PhotoItem(
            key,
            read,
            self.platform,
            self.post_url,
            self.album,
            self.taken_at,
            self.caption,
            self.post_key,
        )


def post_key(
    platform: Platform, identity: str | None, posted: datetime | None = None
) -> str | None:
    """The key the photos of one post share: the platform and the post's own identity (an id, a
    URL, its first picture's path), else the time it was posted; hashed when too long to store."""
    identity = identity or (f"{posted.timestamp():.0f}" if posted else None)
    if not identity:
        return None
    key = f"{platform}:{identity}"
    if len(key) <= POST_KEY_LENGTH:
        return key
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{platform}:sha256:{digest}"


def looks_like_photo(name: str) -> bool:
    """True when a file name has the suffix of a photo format the engine reads."""
    dot = name.rfind(".")
    return dot != -1 and name[dot:].lower() in IMAGE_SUFFIXES
