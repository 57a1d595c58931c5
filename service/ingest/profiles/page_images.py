"""The photos a web page shows: Open Graph and Twitter cards, img/srcset (largest candidate),
picture sources, lazy-loading attributes, links to images, JSON-LD and inline backgrounds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from service.ingest.fields import as_text, from_iso, load_json
from service.ingest.items import looks_like_photo

# Where a page names its photos, most deliberate first (the order of FORMATS.md 6.5).
_OPEN_GRAPH, _CARD, _IMG, _PICTURE, _LAZY, _LINK, _JSON_LD, _BACKGROUND = range(8)
_OG_IMAGE = frozenset({"og:image", "og:image:url", "og:image:secure_url"})
_CARD_IMAGE = frozenset({"twitter:image", "twitter:image:src"})
_LAZY_SRC = ("data-src", "data-original", "data-lazy-src", "data-full", "data-large-file")
_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
_BACKGROUND_URL = re.compile(
    r"background(?:-image)?\s*:[^;]*?url\(\s*(['\"]?)([^'\")]+)\1\s*\)", re.I
)
_NOT_PHOTOS = re.compile(
    r"(?:^|[-_./])(?:favicon|sprites?|icons?|logo|spacer|pixel|blank)(?:[-_.]|$)", re.I
)
_JSON_LD_NODES = 10_000  # a hostile page's JSON-LD is walked only so far


@dataclass(frozen=True)
class PageImage:
    url: str
    alt: str | None = None


@dataclass
class PageImages:
    title: str | None = None
    published: datetime | None = None
    images: list[PageImage] = field(default_factory=list)


def images_of_page(markup: str, page_url: str) -> PageImages:
    """The page's photos as absolute URLs, best sources first, each once; never raises."""
    parser = _Collector()
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):  # html.parser's answer to some broken markup
        pass
    base = _joined(page_url, parser.base) if parser.base else page_url
    found = PageImages(parser.title or parser.page_title, from_iso(parser.published))
    seen: set[str] = set()
    for _, url, alt in sorted(parser.candidates, key=lambda candidate: candidate[0]):
        absolute = _absolute(base, url)
        if absolute is not None and absolute not in seen:
            seen.add(absolute)
            found.images.append(PageImage(absolute, as_text(alt)))
    return found


def largest_in_srcset(srcset: str) -> str | None:
    """The candidate of a srcset with the largest width (`800w`) or density (`2x`)."""
    best: tuple[int, float, str] | None = None
    for url, descriptors in _srcset_candidates(srcset):
        # Bounded digits: Python refuses to convert a 5000-digit number a hostile page may hold.
        width = next((int(d[:-1]) for d in descriptors if re.fullmatch(r"\d{1,9}w", d)), None)
        dense = (float(d[:-1]) for d in descriptors if re.fullmatch(r"\d{1,9}(\.\d{1,9})?x", d))
        density = next(dense, 1.0)
        score = (1, float(width), url) if width is not None else (0, density, url)
        if best is None or score[:2] > best[:2]:
            best = score
    return best[2] if best else None


def _srcset_candidates(srcset: str) -> Iterator[tuple[str, list[str]]]:
    # WHATWG's parser in short: a URL is a run without spaces (commas inside it are kept, as
    # image CDNs use them), a trailing comma ends it, descriptors run to the next comma.
    for match in re.finditer(r"[\s,]*([^\s,][^\s]*?)(,+(?=\s|$)|\s+([^,]*)(?:,|$)|$)", srcset):
        url, descriptors = match[1], match[3] or ""
        if url.endswith(","):
            url = url.rstrip(",")
        if url:
            yield url, descriptors.split()


def _joined(page_url: str, base: str) -> str:
    """The page's <base href>, unless it is not a URL at all (then the page's own address)."""
    try:
        return urljoin(page_url, base)
    except ValueError:  # e.g. an unbalanced "[" read as a broken IPv6 address
        return page_url


def _path_of(href: str) -> str:
    try:
        return urlsplit(href).path
    except ValueError:
        return ""


def _absolute(base: str, url: str) -> str | None:
    url = url.strip()
    if not url or url.lower().startswith(("data:", "javascript:", "blob:")) or len(url) > 4096:
        return None
    try:
        absolute = urljoin(base, url)
        parts = urlsplit(absolute)
    except ValueError:
        return None
    name = parts.path.rsplit("/", 1)[-1].lower()
    if parts.scheme not in ("http", "https") or not parts.netloc or _NOT_PHOTOS.search(name):
        return None
    return None if name.endswith((".svg", ".ico")) else absolute.split("#", 1)[0]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.candidates: list[tuple[int, str, str | None]] = []
        self.base: str | None = None
        self.title: str | None = None
        self.page_title: str | None = None
        self.published: str | None = None
        self._in: str | None = None  # "title" or "ld" while inside those elements
        self._text: list[str] = []

    def _add(self, source: int, url: Any, alt: Any = None) -> None:
        if isinstance(url, str) and url.strip():
            self.candidates.append((source, url, alt if isinstance(alt, str) else None))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "meta":
            self._meta(attr)
        elif tag == "base" and self.base is None:
            self.base = attr.get("href") or None
        elif tag == "link" and "image_src" in attr.get("rel", "").split():
            self._add(_CARD, attr.get("href"))
        elif tag == "img" and not _is_pixel(attr):
            self._add(
                _IMG, largest_in_srcset(attr.get("srcset", "")) or attr.get("src"), attr.get("alt")
            )
        elif tag == "source":
            self._add(_PICTURE, largest_in_srcset(attr.get("srcset", "")))
        elif tag == "a" and looks_like_photo(_path_of(attr.get("href", ""))):
            self._add(_LINK, attr.get("href"), attr.get("title"))
        elif tag == "title" or (tag == "script" and attr.get("type") == "application/ld+json"):
            self._in, self._text = ("title" if tag == "title" else "ld"), []
        for name in _LAZY_SRC:
            self._add(_LAZY, attr.get(name), attr.get("alt"))
        for name in _LAZY_SRCSET:
            self._add(_LAZY, largest_in_srcset(attr.get(name, "")), attr.get("alt"))
        for match in _BACKGROUND_URL.finditer(attr.get("style", "")):
            self._add(_BACKGROUND, match[2])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def _meta(self, attr: dict[str, str]) -> None:
        kind = (attr.get("property") or attr.get("name") or "").strip().lower()
        content = attr.get("content")
        if kind in _OG_IMAGE:
            self._add(_OPEN_GRAPH, content)
        elif kind == "og:image:alt" and self.candidates and self.candidates[-1][0] == _OPEN_GRAPH:
            source, url, _ = self.candidates.pop()
            self.candidates.append((source, url, content))
        elif kind in _CARD_IMAGE:
            self._add(_CARD, content)
        elif kind == "og:title":
            self.title = as_text(content)
        elif kind == "article:published_time":
            self.published = content

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._in == "title" and tag == "title":
            self.page_title = as_text(" ".join("".join(self._text).split()))
        elif self._in == "ld" and tag == "script":
            for url in _json_ld_images(load_json("".join(self._text))):
                self._add(_JSON_LD, url)
        else:
            return
        self._in = None


def _is_pixel(attr: dict[str, str]) -> bool:
    """A tracking pixel or spacer, by its declared size."""
    sizes = [attr.get("width", ""), attr.get("height", "")]
    return any(size.strip().isdigit() and int(size) <= 2 for size in sizes)


def _json_ld_images(document: Any) -> Iterator[str]:
    """`image` and ImageObject `contentUrl`/`url` values anywhere in a JSON-LD document."""
    stack, visited = [document], 0
    while stack and visited < _JSON_LD_NODES:
        node = stack.pop()
        visited += 1
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            if node.get("@type") == "ImageObject":
                for key in ("contentUrl", "url"):
                    if isinstance(node.get(key), str):
                        yield node[key]
                        break
            image = node.get("image")
            if isinstance(image, str):
                yield image
            stack.extend(value for key, value in node.items() if isinstance(value, dict | list))
