"""Reading fields of untrusted export and API JSON (text, times, shapes) without ever raising."""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

MAX_TEXT = 2000  # captions are stored with matches; a hostile export must not bloat the database
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_BLOCK_TAGS = frozenset({"br", "p", "div", "li"})
_SPACES = re.compile(r"[ \t\r\f\v]+")


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The objects in a JSON array; a lone object counts as an array of one (Meta does that)."""
    if isinstance(value, dict):
        yield value
    for item in as_list(value):
        if isinstance(item, dict):
            yield item


def as_text(value: Any) -> str | None:
    """A non-empty string, trimmed and capped, or None for anything else."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1].rstrip() + "…"
    return text or None


def web_url(value: Any) -> str | None:
    """An absolute http(s) URL of sane length, or None (whether it may be fetched is decided
    when it is fetched)."""
    if not isinstance(value, str) or len(value) > 4096:
        return None
    url = value.strip()
    return url if re.match(r"^https?://[^/\s]+", url, re.IGNORECASE) else None


def as_id(value: Any) -> str | None:
    """An id kept as a string: X and Mastodon ids exceed 2**53, so a float is never trusted."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,40}", value.strip()):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**40:
        return str(value)
    return None


def load_json(data: bytes | str) -> Any:
    """The decoded document, or None when it is not JSON (any encoding json accepts)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def repair_mojibake(text: str) -> str:
    """Undoes Meta's encoding bug: UTF-8 bytes written as one \\u00XX character each."""
    if text.isascii() or any(ord(char) > 0xFF for char in text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return text


def repaired(value: Any) -> Any:
    """A Meta JSON document with every string (keys too) repaired; iterative, so depth is free."""
    if isinstance(value, str):
        return repair_mojibake(value)
    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        item = parent[key]
        if isinstance(item, str):
            parent[key] = repair_mojibake(item)
        elif isinstance(item, list):
            stack.extend((item, index) for index in range(len(item)))
        elif isinstance(item, dict):
            fixed = {repair_mojibake(k) if isinstance(k, str) else k: v for k, v in item.items()}
            parent[key] = fixed
            stack.extend((fixed, k) for k in fixed)
    return root[0]


def from_unix(value: Any) -> datetime | None:
    """Unix seconds (a number or a string of digits) as an aware UTC datetime; 0 and bogus
    values (Meta writes -62169958800 for "unknown") give None."""
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"-?[0-9]{1,12}(\.[0-9]{1,9})?", value):
            return None
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    if not 0 < value < (_LATEST - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds():
        return None
    return datetime.fromtimestamp(value, UTC)


def from_iso(value: Any) -> datetime | None:
    """An ISO 8601 time (a zone-less one is taken as UTC) as an aware UTC datetime."""
    text = as_text(value)
    if text is None or len(text) > 40:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _in_range(when)


def from_format(value: Any, *formats: str) -> datetime | None:
    """A time written in one of the strptime formats (zone-less ones taken as UTC)."""
    text = as_text(value)
    if text is None or len(text) > 60:
        return None
    for fmt in formats:
        try:
            return _in_range(datetime.strptime(text, fmt))
        except ValueError:
            continue
    return None


def _in_range(when: datetime) -> datetime | None:
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when if _EARLIEST <= when < _LATEST else None


def html_to_text(markup: Any) -> str | None:
    """The readable text of a post's HTML (Mastodon `content`): tags dropped, entities decoded."""
    if not isinstance(markup, str):
        return None
    parser = _TextOf()
    try:
        parser.feed(markup[: MAX_TEXT * 20])
        parser.close()
    except (AssertionError, ValueError):  # html.parser's answer to some broken markup
        return as_text(html.unescape(re.sub(r"<[^>]*>", " ", markup)))
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    return as_text("\n".join(line for line in lines if line))


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def safe_name(filename: str) -> str:
    """A file name as sent by a browser, reduced to its last component and printable."""
    base = os.path.basename(filename.replace("\\", "/"))
    cleaned = "".join(c for c in base if c.isprintable() and c not in "/\0")
    return cleaned[:200] or "upload"
