"""Mastodon account archive (`outbox.json`, Activity Streams): the pictures of the friend's own
posts, linked to each post; private mentions are left out, boosts carry no files."""

from __future__ import annotations

import re
from typing import Any

from service.ingest.exports.index import ExportIndex, Plan, path_of_url
from service.ingest.fields import as_dict, as_list, as_text, dicts, from_iso, html_to_text
from service.ingest.items import Provenance, post_key

_OUTBOX = re.compile(r"(?:^|/)outbox\.json$")
_ACTOR = re.compile(r"(?:^|/)actor\.json$")
_SIGNS_WITH_OUTBOX = re.compile(r"(?:^|/)(?:actor\.json$|media_attachments/)")
_PUBLIC = frozenset({"https://www.w3.org/ns/activitystreams#Public", "as:Public", "Public"})


def detect(index: ExportIndex) -> bool:
    return index.any_matching(_OUTBOX) and index.any_matching(_SIGNS_WITH_OUTBOX)


def wants(name: str) -> bool:
    return bool(_OUTBOX.search(name) or _ACTOR.search(name))


def plan(index: ExportIndex) -> Plan:
    result = Plan("mastodon")
    for key in index.matching(_OUTBOX):
        for activity in dicts(as_dict(index.json(key)).get("orderedItems")):
            note = as_dict(activity.get("object"))
            if activity.get("type") != "Create" or not note:
                continue  # a boost ("Announce") names someone else's post and holds no file
            _add_note(index, result, note, activity)
    for key in index.matching(_ACTOR):
        actor = as_dict(index.json(key))
        for field, album in (("icon", "Profile picture"), ("image", "Profile header")):
            target = _attachment_path(as_dict(actor.get(field)).get("url"))
            result.add(index.resolve(target), Provenance("mastodon", album=album))
    return result


def _add_note(
    index: ExportIndex, result: Plan, note: dict[str, Any], activity: dict[str, Any]
) -> None:
    keys = [index.resolve(_attachment_path(a.get("url"))) for a in dicts(note.get("attachment"))]
    if _is_direct(note, activity):
        # A private mention is a message, not a post: its pictures are never scanned.
        result.skipped.update(key for key in keys if key is not None)
        return
    text = html_to_text(note.get("content"))
    # The status's own URI: the same key as the post read from the profile link.
    post = post_key("mastodon", _link(note.get("id")) or _link(note.get("url")))
    for key, attachment in zip(keys, dicts(note.get("attachment")), strict=True):
        provenance = Provenance(
            "mastodon",
            post_url=_link(note.get("url")) or _link(note.get("id")),
            taken_at=from_iso(note.get("published")) or from_iso(activity.get("published")),
            caption=text or as_text(attachment.get("name")),
            post_key=post,
        )
        result.add(key, provenance)


def _is_direct(note: dict[str, Any], activity: dict[str, Any]) -> bool:
    """Public, unlisted and followers-only posts address the public or the followers; a private
    mention addresses only the people it names."""
    audience = [
        str(who)
        for source in (note, activity)
        for field in ("to", "cc")
        for who in (as_list(source.get(field)) or [source.get(field)])
        if isinstance(who, str)
    ]
    if not audience:
        return False  # no addressing at all: not Mastodon's own writing, so nothing to go by
    return not any(who in _PUBLIC or who.endswith("/followers") for who in audience)


def _attachment_path(url: Any) -> str | None:
    """The archive path of an attachment: Mastodon writes it relative already, but older
    archives kept the server's `/system/...` URL."""
    if isinstance(url, dict):
        url = url.get("href")
    if isinstance(url, list):
        url = next((u for u in url if isinstance(u, str)), None)
    path = path_of_url(url)
    return path.removeprefix("system/") if path else None


def _link(value: Any) -> str | None:
    link = as_text(value)
    return link if link and link.startswith(("https://", "http://")) else None
