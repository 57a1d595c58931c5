"""What a layout reader sees of an export (every path, its small JSON files) and what it returns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from service.ingest.fields import load_json, repaired
from service.ingest.items import Platform, Provenance

_TAIL_DEPTH = 3  # a uri still resolves under this many extra top folders (re-zipped, nested parts)


@dataclass
class Plan:
    """A layout reader's answer: the provenance of the photos its JSON describes, the members
    never to give (private messages, duplicates) and the folders that hold no posted photos."""

    platform: Platform
    found: dict[str, Provenance] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    excluded_folders: frozenset[str] = frozenset()

    def add(self, key: str | None, provenance: Provenance) -> None:
        """Records a photo; a photo described twice (post and album) keeps the first description
        and takes only what it lacked from the second."""
        if key is None:
            return
        known = self.found.get(key)
        self.found[key] = provenance if known is None else known.filled_from(provenance)

    def provenance_of(self, key: str) -> Provenance | None:
        """The provenance of a member to give, or None when it is not to be given at all."""
        if key in self.skipped:
            return None
        known = self.found.get(key)
        if known is not None:
            return known
        folders = key.split("/")[:-1]
        if self.excluded_folders.intersection(folders):
            return None
        return Provenance(self.platform)


class ExportIndex:
    """Every member path of all the parts of one export, and the small JSON files read from them."""

    def __init__(self, names: Iterable[str], documents: dict[str, bytes]) -> None:
        self.names = list(dict.fromkeys(names))
        self.documents = documents
        self._tails: dict[str, list[str]] | None = None
        self._basenames: dict[str, list[str]] = {}

    def matching(self, pattern: re.Pattern[str]) -> list[str]:
        """The member paths the pattern finds (with `search`), in archive order."""
        return [name for name in self.names if pattern.search(name)]

    def any_matching(self, pattern: re.Pattern[str]) -> bool:
        return any(pattern.search(name) for name in self.names)

    def documents_matching(self, pattern: re.Pattern[str]) -> Iterator[tuple[str, bytes]]:
        for key, data in self.documents.items():
            if pattern.search(key):
                yield key, data

    def json(self, key: str, *, meta: bool = False) -> Any:
        """A document decoded, or None; `meta` repairs Meta's mojibake in every string."""
        data = self.documents.get(key)
        document = None if data is None else load_json(data)
        return repaired(document) if meta and document is not None else document

    def resolve(self, uri: Any) -> str | None:
        """The member a path written inside the export's JSON stands for: as written, then under
        extra top folders, then without its first folder, then by a file name found only once."""
        path = _relative_path(uri)
        if path is None:
            return None
        tails = self._tail_index()
        parts = path.split("/")
        for start in range(min(len(parts), _TAIL_DEPTH + 1)):
            keys = tails.get("/".join(parts[start:]))
            if keys:
                return keys[0]
        keys = self._basenames.get(parts[-1], [])
        return keys[0] if len(keys) == 1 else None

    def _tail_index(self) -> dict[str, list[str]]:
        if self._tails is None:
            self._tails = {}
            for name in self.names:
                parts = name.split("/")
                for start in range(min(len(parts), _TAIL_DEPTH + 1)):
                    self._tails.setdefault("/".join(parts[start:]), []).append(name)
                self._basenames.setdefault(parts[-1], []).append(name)
        return self._tails


def _relative_path(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri.strip() or len(uri) > 4096:
        return None
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", uri):  # an expired CDN link, not a file
        return None
    parts = [part for part in uri.strip().replace("\\", "/").split("/") if part not in ("", ".")]
    return "/".join(parts) if parts and ".." not in parts else None


def path_of_url(url: Any) -> str | None:
    """The path part of a URL, decoded and without its leading slash (Mastodon archive links)."""
    if not isinstance(url, str) or len(url) > 4096:
        return None
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        return None
    return path.lstrip("/") or None


def folder_of(key: str) -> str:
    return key.rsplit("/", 1)[0] if "/" in key else ""


def basename(key: str) -> str:
    return key.rsplit("/", 1)[-1]
