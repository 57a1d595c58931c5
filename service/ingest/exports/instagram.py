"""Instagram "Download your information" in JSON: posts_1..n (carousels too), stories, profile
photos, archived posts and reels, in the 2021-2025 layouts and the legacy `media.json` one."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from service.ingest.errors import html_export
from service.ingest.exports.index import ExportIndex, Plan, basename
from service.ingest.fields import as_dict, as_text, dicts, from_format, from_unix
from service.ingest.items import Provenance, post_key

_ACTIVITY = r"(?:^|/)(?:your_instagram_activity/(?:content|media)|content)/"
_SIGNS = re.compile(
    r"(?:^|/)your_instagram_activity/|" + _ACTIVITY + r"posts_\d+\.(?:json|html)$"
    r"|(?:^|/)personal_information/personal_information/|(?:^|/)media\.json$"
)
_ACTIVITY_DOCUMENTS = re.compile(_ACTIVITY + r"[^/]+\.json$")
_OTHER_DOCUMENTS = re.compile(r"(?:^|/)(?:media|personal_information)\.json$")
_HTML = re.compile(_ACTIVITY + r"posts_\d+\.html$")
_EXCLUDED = frozenset({"messages", "direct"})  # private messages, current and legacy
_ALBUMS = {
    "stories": "Stories",
    "profile_photos": "Profile photos",
    "archived_posts": "Archived posts",
    "reels": "Reels",
    "igtv_videos": "IGTV",
}
_LEGACY_ALBUMS = {"stories": "Stories", "profile": "Profile photos"}


def detect(index: ExportIndex) -> bool:
    return index.any_matching(_SIGNS)


def wants(name: str) -> bool:
    return bool(_ACTIVITY_DOCUMENTS.search(name) or _OTHER_DOCUMENTS.search(name))


def plan(index: ExportIndex) -> Plan:
    """The photos the export's JSON describes; refuses an export made in HTML."""
    activity = index.matching(_ACTIVITY_DOCUMENTS)
    if not activity and index.any_matching(_HTML):
        raise html_export("Instagram")
    result = Plan("instagram", excluded_folders=_EXCLUDED)
    for key in activity:
        section = re.sub(r"_\d+$", "", basename(key).removesuffix(".json"))
        _add_section(index, result, index.json(key, meta=True), _ALBUMS.get(section))
    for key in index.matching(_OTHER_DOCUMENTS):
        document = as_dict(index.json(key, meta=True))
        if key.endswith("personal_information.json"):
            _add_profile_photo(index, result, document)
        else:
            _add_legacy(index, result, document)
    _skip_public_copies(index, result)
    return result


def _add_section(index: ExportIndex, result: Plan, document: Any, album: str | None) -> None:
    """A posts-like file: an array, or an object wrapping one (`ig_stories`, ...)."""
    entries = list(dicts(document)) if isinstance(document, list) else []
    for value in as_dict(document).values():
        entries.extend(dicts(value) if isinstance(value, list) else [])
    for entry in entries:
        if isinstance(entry.get("media"), list):
            _add_post(index, result, entry, album)
        else:
            _add_media(index, result, entry, album, caption=None, posted=None)


def _add_post(index: ExportIndex, result: Plan, post: dict[str, Any], album: str | None) -> None:
    media = list(dicts(post.get("media")))
    first = media[0] if media else {}
    posted = from_unix(post.get("creation_timestamp")) or from_unix(first.get("creation_timestamp"))
    caption = as_text(post.get("title")) or as_text(first.get("title"))
    # The export has no post id: a post is known by its first picture (stable across exports),
    # else by its time.
    key = post_key("instagram", as_text(first.get("uri")), posted)
    for item in media:
        _add_media(index, result, item, album, caption=caption, posted=posted, key=key)


def _add_media(
    index: ExportIndex,
    result: Plan,
    media: dict[str, Any],
    album: str | None,
    *,
    caption: str | None,
    posted: datetime | None,
    key: str | None = None,
) -> None:
    provenance = Provenance(
        "instagram",
        album=album,
        taken_at=posted or from_unix(media.get("creation_timestamp")),
        caption=as_text(media.get("title")) or caption,
        post_key=key,
    )
    result.add(index.resolve(media.get("uri")), provenance)


def _add_profile_photo(index: ExportIndex, result: Plan, document: dict[str, Any]) -> None:
    for user in dicts(document.get("profile_user")):
        photo = as_dict(as_dict(user.get("media_map_data")).get("Profile Photo"))
        _add_media(index, result, photo, "Profile photos", caption=None, posted=None)


def _add_legacy(index: ExportIndex, result: Plan, document: dict[str, Any]) -> None:
    """The 2018-2020 `media.json`: lists of {path, caption, taken_at} by kind."""
    for kind, entries in document.items():
        if kind == "direct":
            continue
        for entry in dicts(entries):
            taken = from_format(entry.get("taken_at"), "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z")
            provenance = Provenance(
                "instagram",
                album=_LEGACY_ALBUMS.get(str(kind)),
                taken_at=taken,
                caption=as_text(entry.get("caption")),
            )
            result.add(index.resolve(entry.get("path")), provenance)


def _skip_public_copies(index: ExportIndex, result: Plan) -> None:
    """Some 2025 exports repeat their media under `public-media/`; one copy is enough."""
    elsewhere = {basename(n) for n in index.names if "public-media/" not in f"/{n}"}
    for name in index.names:
        if "/public-media/" in f"/{name}" and basename(name) in elsewhere:
            result.skipped.add(name)
