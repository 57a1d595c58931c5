"""Google Takeout (Google Photos): each photo paired with its JSON sidecar, whichever of Google's
namings it has (`.json`, `.supplemental-metadata.json`, cut to 51 characters, `(n)` counters),
edited copies with their original's sidecar, albums named from their `metadata.json`."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.ingest.exports.index import ExportIndex, Plan, basename, folder_of
from service.ingest.fields import as_dict, as_text, from_unix
from service.ingest.items import Provenance, looks_like_photo

_SIGNS = re.compile(r"(?:^|/)Takeout/Google[^/]*/|\.supplemental-metadata(?:\(\d+\))?\.json$")
_SIDECAR_LIMIT = 46  # "<name>[.supplemental-metadata]" is cut to 46 characters, then ".json" added
_SUFFIX = "supplemental-metadata"
_COUNTER = re.compile(r"^(?P<stem>.*?)\((?P<n>\d+)\)(?P<ext>\.[^.]*)?$")
_YEAR_FOLDER = re.compile(r"(?:^|\D)(?:19|20)\d\d$")
_TRASH = frozenset({"Trash", "Bin", "Papierkorb", "Corbeille", "Papelera", "Cestino", "Kosz"})
_NOT_SIDECARS = frozenset(
    {"shared_album_comments.json", "user-generated-memory-titles.json", "print-subscriptions.json"}
)
# Google's "edited" suffixes in the languages its UI speaks (GooglePhotosTakeoutHelper's list).
_EDITED = (
    "-edited", "-effects", "-smile", "-mix", "-edytowane", "-bearbeitet", "-bewerkt", "-編集済み",
    "-modificato", "-modifié", "-ha editado", "-editado", "-editat", "-отредактировано", "-已编辑",
    "-编辑", "-편집됨", "-düzenlendi", "-تم التعديل", "-संपादित", "-đã chỉnh sửa", "-แก้ไขแล้ว",
    "-diedit",
)  # fmt: skip


@dataclass(frozen=True)
class _Sidecar:
    key: str
    body: dict[str, Any]


def detect(index: ExportIndex) -> bool:
    if index.any_matching(_SIGNS):
        return True
    names = set(index.names)
    return any(n.endswith(".json") and looks_like_photo(n[:-5]) and n[:-5] in names for n in names)


def wants(name: str) -> bool:
    return name.endswith(".json") and basename(name) not in _NOT_SIDECARS


def plan(index: ExportIndex) -> Plan:
    result = Plan("google_photos")
    by_folder: dict[str, list[str]] = defaultdict(list)
    for name in index.names:
        by_folder[folder_of(name)].append(name)
    seen: dict[tuple[str, str, str], str] = {}
    for folder, names in by_folder.items():
        album = _album_name(index, folder, names)
        sidecars = _sidecars_by_base(names)
        titles: dict[str, list[_Sidecar]] | None = None
        for name in names:
            if name.endswith(".json") or not looks_like_photo(name):
                continue
            file = basename(name)
            sidecar = _sidecar_for(index, file, sidecars)
            if sidecar is None and not _COUNTER.match(file):
                titles = titles if titles is not None else _by_title(index, names)
                found = titles.get(unicodedata.normalize("NFC", file), [])
                sidecar = found[0] if len(found) == 1 else None
            _add(result, name, sidecar, album, seen, trash=basename(folder) in _TRASH)
    return result


def _add(
    result: Plan,
    key: str,
    sidecar: _Sidecar | None,
    album: str | None,
    seen: dict[tuple[str, str, str], str],
    *,
    trash: bool,
) -> None:
    body = sidecar.body if sidecar else {}
    if trash or body.get("trashed") is True:
        result.skipped.add(key)  # on its way out of the library already
        return
    provenance = Provenance(
        "google_photos",
        post_url=_photos_link(body.get("url")),
        album=album,
        taken_at=_taken_at(body),
        caption=as_text(body.get("description")),
    )
    # The same item sits in its year folder and in each album folder: give it once.
    title, taken = as_text(body.get("title")), as_dict(body.get("photoTakenTime")).get("timestamp")
    if title is not None and isinstance(taken, str | int):
        first = seen.setdefault((basename(key), title, str(taken)), key)
        if first != key:
            result.skipped.add(key)
            result.found[first] = result.found[first].filled_from(provenance)
            return
    result.add(key, provenance)


def _album_name(index: ExportIndex, folder: str, names: list[str]) -> str | None:
    for name in names:
        if not name.endswith(".json") or looks_like_photo(name[:-5]):
            continue
        body = as_dict(index.json(name))
        album = as_dict(body.get("albumData")) or body  # older exports wrap the album fields
        if "photoTakenTime" not in album and ("date" in album or "access" in album):
            return as_text(album.get("title"))
    name = basename(folder)
    if not name or name.startswith(("Google ", "Takeout")) or _YEAR_FOLDER.search(name):
        return None
    return None if name in _TRASH or name == "Archive" else name


def _sidecars_by_base(names: list[str]) -> dict[tuple[str, int], list[str]]:
    """Sidecars by (the start of the media name they describe, duplicate counter)."""
    found: dict[tuple[str, int], list[str]] = defaultdict(list)
    for name in names:
        file = basename(name)
        if not file.endswith(".json") or file in _NOT_SIDECARS:
            continue
        stem, counter = _split_counter(file[: -len(".json")])
        for base in _bases(stem):
            found[(unicodedata.normalize("NFC", base), counter)].append(name)
    return found


def _split_counter(stem: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.*)\((\d{1,4})\)", stem)
    return (match[1], int(match[2])) if match else (stem, 0)


def _bases(stem: str) -> list[str]:
    """What a sidecar stem may start with: itself, or itself without a clipped
    `.supplemental-metadata` (any prefix of it, even an empty one: `IMG.jpg..json`)."""
    bases = [stem]
    head, dot, last = stem.rpartition(".")
    if dot and _SUFFIX.startswith(last) and head:
        bases.insert(0, head)
    return bases


def _sidecar_for(
    index: ExportIndex, file: str, sidecars: dict[tuple[str, int], list[str]]
) -> _Sidecar | None:
    for name, counter in _media_names(unicodedata.normalize("NFC", file)):
        for base in _cut_forms(name):
            for key in sidecars.get((base, counter), []):
                body = index.json(key)
                if _describes_media(body):
                    return _Sidecar(key, body)
    return None


def _by_title(index: ExportIndex, names: list[str]) -> dict[str, list[_Sidecar]]:
    """A folder's sidecars by the title they give, the last resort for a file name Google
    changed (`&` to `_`...). Duplicates share a title, so only a title found once is used,
    and never for a file with a `(n)` counter."""
    titles: dict[str, list[_Sidecar]] = defaultdict(list)
    for key in names:
        if key.endswith(".json"):
            body = index.json(key)
            title = as_text(body.get("title")) if _describes_media(body) else None
            if title is not None:
                titles[unicodedata.normalize("NFC", title)].append(_Sidecar(key, body))
    return titles


def _describes_media(body: Any) -> bool:
    return isinstance(body, dict) and any(
        field in body for field in ("photoTakenTime", "creationTime", "url")
    )


def _media_names(file: str) -> list[tuple[str, int]]:
    """The names (and counters) a media file's sidecar may be written for, most likely first:
    `a(1).jpg` is described by `a.jpg(1).json`; `a-edited.jpg` and `a~2.jpg` by `a.jpg`'s."""
    names = [(file, 0)]
    match = _COUNTER.match(file)
    if match:
        names.insert(0, (match["stem"] + (match["ext"] or ""), int(match["n"])))
    for name, counter in list(names):
        stem, dot, ext = name.rpartition(".")
        stem, ext = (stem, dot + ext) if dot else (name, "")
        for suffix in _EDITED:
            if stem.lower().endswith(suffix):
                names.append((stem[: -len(suffix)] + ext, counter))
        if "~" in stem:
            names.append((stem.rsplit("~", 1)[0] + ext, counter))
        if ext:
            names.append((stem, counter))  # uploaded without an extension, one added since
    return names


def _cut_forms(name: str) -> list[str]:
    """The name as Google may have cut it: by characters and, as some exports do, by bytes."""
    by_bytes = name.encode()[:_SIDECAR_LIMIT].decode(errors="ignore")
    return list(dict.fromkeys([name, name[:_SIDECAR_LIMIT], by_bytes]))


def _taken_at(body: dict[str, Any]) -> datetime | None:
    for field in ("photoTakenTime", "creationTime", "photoLastModifiedTime"):
        taken = from_unix(as_dict(body.get(field)).get("timestamp"))
        if taken is not None:
            return taken
    return None


def _photos_link(url: Any) -> str | None:
    link = as_text(url)
    return link if link and link.startswith("https://photos.google.com/") else None
