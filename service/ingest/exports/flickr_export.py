"""Flickr "Your Flickr Data": `photo_<id>.json` files in the first part, the pictures (named with
the same id) in the `data-download-N` parts, albums from `albums.json`."""

from __future__ import annotations

import re
from typing import Any

from service.ingest.exports.index import ExportIndex, Plan, basename
from service.ingest.fields import as_dict, as_id, as_text, dicts, from_format
from service.ingest.items import Provenance

_PHOTO_JSON = re.compile(r"(?:^|/)photo_(\d+)\.json$")
_ALBUMS = re.compile(r"(?:^|/)albums\.json$")
_ACCOUNT = re.compile(r"(?:^|/)account_profile\.json$")
# How Flickr names a picture after its id: `fresh-crop_131099312_o.jpg`, `131099312_9d32d647f1.jpg`.
_ID_IN_NAME = tuple(re.compile(p) for p in (r"_(\d+)_o\.[^.]+$", r"_(\d+)\.[^.]+$", r"^(\d+)_"))
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H: %M: %S")


def detect(index: ExportIndex) -> bool:
    return index.any_matching(_PHOTO_JSON) or (
        index.any_matching(_ALBUMS) and index.any_matching(_ACCOUNT)
    )


def wants(name: str) -> bool:
    return bool(_PHOTO_JSON.search(name) or _ALBUMS.search(name))


def plan(index: ExportIndex) -> Plan:
    result = Plan("flickr")
    albums = _album_titles(index)
    photos: dict[str, Provenance] = {}
    for key, _ in index.documents_matching(_PHOTO_JSON):
        body = as_dict(index.json(key))
        named = _PHOTO_JSON.search(key)
        photo_id = as_id(body.get("id")) or (named[1] if named else "")
        first_album = next((as_text(a.get("title")) for a in dicts(body.get("albums"))), None)
        photos[photo_id] = Provenance(
            "flickr",
            post_url=_photo_page(body.get("photopage")),
            album=first_album or albums.get(photo_id),
            taken_at=from_format(body.get("date_taken"), *_DATE_FORMATS),
            caption=as_text(body.get("description")) or as_text(body.get("name")),
        )
    for key in index.names:
        if key.endswith(".json"):
            continue
        photo_id = _photo_id(basename(key), photos)
        if photo_id is not None:
            result.add(key, photos[photo_id])
    return result


def _album_titles(index: ExportIndex) -> dict[str, str]:
    titles: dict[str, str] = {}
    for key, _ in index.documents_matching(_ALBUMS):
        for album in dicts(as_dict(index.json(key)).get("albums")):
            title = as_text(album.get("title"))
            for photo_id in _ids(album.get("photos")):
                if title and photo_id != "0":  # "0" stands for no photo
                    titles.setdefault(photo_id, title)
    return titles


def _ids(value: Any) -> list[str]:
    """Photo ids listed as strings or numbers; anything else is passed over."""
    items = value if isinstance(value, list) else []
    return [photo_id for item in items if (photo_id := as_id(item)) is not None]


def _photo_id(name: str, photos: dict[str, Provenance]) -> str | None:
    for pattern in _ID_IN_NAME:
        match = pattern.search(name)
        if match and match[1] in photos:
            return match[1]
    return None


def _photo_page(url: Any) -> str | None:
    link = as_text(url)
    return link if link and re.match(r"^https://(www\.)?flickr\.com/", link) else None
