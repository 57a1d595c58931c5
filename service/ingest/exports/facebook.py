"""Facebook "Download your information" in JSON: posts, albums, uncategorized photos, videos' and
stories' pictures, in the 2024+ layout (`your_facebook_activity/`) and the older one."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from service.ingest.errors import html_export
from service.ingest.exports.index import ExportIndex, Plan
from service.ingest.fields import as_dict, as_text, dicts, from_unix
from service.ingest.items import Provenance, post_key

_SIGNS = re.compile(
    r"(?:^|/)(?:your_facebook_activity/|posts/your_posts_1\.(?:json|html)$"
    r"|photos_and_videos/album/\d+\.json$)"
)
_CONTENT = r"(?:^|/)(?:your_facebook_activity/|posts/|photos_and_videos/|stories/)"
_DOCUMENTS = re.compile(_CONTENT + r"(?:[^/]+/){0,2}[^/]+\.json$")
_HTML = re.compile(_CONTENT + r"(?:[^/]+/){0,2}[^/]+\.html$")
_EXCLUDED = frozenset({"messages", "stickers_used"})  # private messages; Facebook's own stickers


def detect(index: ExportIndex) -> bool:
    return index.any_matching(_SIGNS)


def wants(name: str) -> bool:
    return _DOCUMENTS.search(name) is not None and "/messages/" not in f"/{name}"


def plan(index: ExportIndex) -> Plan:
    """The photos the export's JSON describes; refuses an export made in HTML."""
    keys = [key for key in index.matching(_DOCUMENTS) if wants(key)]
    if not keys and index.any_matching(_HTML):
        raise html_export("Facebook")
    result = Plan("facebook", excluded_folders=_EXCLUDED)
    documents = [index.json(key, meta=True) for key in keys]
    # Posts first: they carry the text and time that albums and media lists lack.
    for document in documents:
        for post in _posts(document):
            _add_post(index, result, post)
    for document in documents:
        _add_collection(index, result, document)
    return result


def _posts(document: Any) -> list[dict[str, Any]]:
    """The posts of a posts file: a JSON array, or an object holding one (parse by shape)."""
    if isinstance(document, list):
        return list(dicts(document))
    for value in as_dict(document).values():
        if isinstance(value, list) and any("attachments" in post for post in dicts(value)):
            return list(dicts(value))
    return []


def _add_post(index: ExportIndex, result: Plan, post: dict[str, Any]) -> None:
    text = next((t for d in dicts(post.get("data")) if (t := as_text(d.get("post")))), None)
    posted = from_unix(post.get("timestamp"))
    media = [
        as_dict(entry.get("media"))
        for attachment in dicts(post.get("attachments"))
        for entry in dicts(attachment.get("data"))
    ]
    # A post has no id in the export: it is known by its first picture, else by its time.
    first = next((uri for m in media if (uri := as_text(m.get("uri")))), None)
    key = post_key("facebook", first, posted)
    for item in media:
        _add_media(index, result, item, album=None, caption=text, posted=posted, key=key)


def _add_collection(index: ExportIndex, result: Plan, document: Any) -> None:
    """Album files, `other_photos_v2`, `videos_v2`, `archived_stories_v2` and the like."""
    body = as_dict(document)
    if isinstance(body.get("photos"), list):
        album = as_text(body.get("name"))
        for media in [*dicts(body.get("photos")), as_dict(body.get("cover_photo"))]:
            _add_media(index, result, media, album=album, caption=None, posted=None)
        return
    for name, value in body.items():
        if not isinstance(value, list):
            continue
        album = "Stories" if "stories" in str(name) else None
        for media in dicts(value):
            if "attachments" in media:
                continue  # a post inside an object was read with the posts
            _add_media(index, result, media, album=album, caption=None, posted=None)


def _add_media(
    index: ExportIndex,
    result: Plan,
    media: dict[str, Any],
    *,
    album: str | None,
    caption: str | None,
    posted: datetime | None,
    key: str | None = None,
) -> None:
    provenance = Provenance(
        "facebook",
        album=album or as_text(media.get("title")),
        taken_at=_taken_at(media) or posted,
        caption=as_text(media.get("description")) or caption,
        post_key=key,
    )
    result.add(index.resolve(media.get("uri")), provenance)
    # A video is scanned through its thumbnail, which Facebook exports as a picture.
    result.add(index.resolve(as_dict(media.get("thumbnail")).get("uri")), provenance)


def _taken_at(media: dict[str, Any]) -> datetime | None:
    metadata = as_dict(media.get("media_metadata"))
    for kind in ("photo_metadata", "video_metadata"):
        for exif in dicts(as_dict(metadata.get(kind)).get("exif_data")):
            taken = from_unix(exif.get("taken_timestamp"))
            if taken is not None:
                return taken
    return from_unix(media.get("creation_timestamp"))
