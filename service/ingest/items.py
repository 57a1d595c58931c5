"""The one shape every source of photos is reduced to: a PhotoItem with its provenance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Literal

Platform = Literal[
    "facebook", "instagram", "google_photos", "x", "mastodon", "bluesky", "flickr", "web", "other"
]

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
    """

    key: str
    read: Callable[[], bytes] = field(repr=False, compare=False)
    platform: Platform = "other"
    post_url: str | None = None
    album: str | None = None
    taken_at: datetime | None = None
    caption: str | None = None


@dataclass(frozen=True)
class Provenance:
    """Where a photo was posted, as far as its source says."""

    platform: Platform
    post_url: str | None = None
    album: str | None = None
    taken_at: datetime | None = None
    caption: str | None = None

    def filled_from(self, other: Provenance) -> Provenance:
        """This provenance with its missing fields taken from another description of the photo."""
        names = [f.name for f in fields(self)]
        gaps = {name: getattr(other, name) for name in names if getattr(self, name) is None}
        return replace(self, **gaps)

    def item(self, key: str, read: Callable[[], bytes]) -> PhotoItem:
        """The PhotoItem of the photo at `key`, with this provenance."""
        return PhotoItem(
            key, read, self.platform, self.post_url, self.album, self.taken_at, self.caption
        )


def looks_like_photo(name: str) -> bool:
    """True when a file name has the suffix of a photo format the engine reads."""
    dot = name.rfind(".")
    return dot != -1 and name[dot:].lower() in IMAGE_SUFFIXES
