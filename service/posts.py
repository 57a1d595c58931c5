"""Posts, the unit of the friend's checklist: the photos of a post share its key (a carousel),
else its URL; a photo known by neither is a post of its own."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from service.states import Answer
from service.tables import Match

# Platforms as people name them: in mails, and on the pages (web/templates/_labels.html).
PLATFORMS = {
    "facebook": "Facebook",
    "instagram": "Instagram",
    "google_photos": "Google Photos",
    "x": "X",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "flickr": "Flickr",
    "web": "A web page",
}


@dataclass(frozen=True)
class Post:
    """One item of the checklist: the confirmed matches of a post's photos, earliest first."""

    matches: tuple[Match, ...]

    @property
    def first(self) -> Match:
        return self.matches[0]

    @property
    def id(self) -> int:
        """The earliest match's id: it stays as more photos of the post are confirmed."""
        assert self.first.id is not None
        return self.first.id

    @property
    def status(self) -> Answer:
        """The matches' common answer; open while any of them is."""
        statuses = [match.status for match in self.matches]
        return Answer.open if Answer.open in statuses else statuses[0]

    @property
    def photos(self) -> list[Match]:
        """One match per photo (a photo found twice is shown once)."""
        seen: dict[str, Match] = {}
        for match in self.matches:
            seen.setdefault(photo_of(match), match)
        return list(seen.values())

    @property
    def verified_at(self) -> datetime | None:
        """When the last of its photos was seen gone from the web; None while one is not."""
        checked = [match.verified_at for match in self.matches]
        return None if None in checked else max(c for c in checked if c is not None)

    def has(self, match_id: int) -> bool:
        return any(match.id == match_id for match in self.matches)


def photo_of(match: Match) -> str:
    """The photo itself: its bytes' digest, or its path when the digest is unknown."""
    return match.photo_digest or match.photo


def post_of(match: Match) -> str:
    if match.post_key:
        return f"key:{match.post_key}"
    if match.post_url:
        return f"url:{match.post_url}"
    return f"photo:{photo_of(match)}"


def posts(matches: Iterable[Match]) -> list[Post]:
    """The matches gathered into posts, each post where its first match comes. A photo known
    only by itself joins a post that holds the very same photo, if one does (one file met
    twice), so a photo is never two items."""
    ordered = list(matches)
    in_post: dict[str, str] = {}
    for match in ordered:
        post = post_of(match)
        if not post.startswith("photo:"):
            in_post.setdefault(photo_of(match), post)
    groups: dict[str, list[Match]] = {}
    for match in ordered:
        post = post_of(match)
        if post.startswith("photo:"):
            post = in_post.get(photo_of(match), post)
        groups.setdefault(post, []).append(match)
    return [Post(tuple(sorted(group, key=lambda m: m.id or 0))) for group in groups.values()]


def open_count(items: Iterable[Post]) -> int:
    return sum(1 for item in items if item.status == Answer.open)
