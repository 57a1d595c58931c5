"""Reference photos: a folder per person, each photo holding exactly that person's one face."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.faces.scanner import Scanner
from service.ingest.items import looks_like_photo


@dataclass
class References:
    people: dict[str, list[np.ndarray]] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, message)


def _photos_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and looks_like_photo(p.name))


def people_folders(root: Path) -> dict[str, list[Path]]:
    """One person named after `root` when it holds photos directly, else one per subfolder."""
    direct = _photos_of(root)
    if direct:
        return {root.resolve().name: direct}
    return {
        sub.name: _photos_of(sub)
        for sub in sorted(root.iterdir())
        if sub.is_dir() and not sub.name.startswith(".") and _photos_of(sub)
    }


def encode_references(root: Path, scanner: Scanner) -> References:
    """Encode every reference photo on the scanner's workers; a photo without exactly one face
    (or unreadable) is reported and skipped."""
    refs = References()
    photos: list[tuple[str, Path, bytes]] = []
    for person, paths in people_folders(root).items():
        for path in paths:
            try:
                photos.append((person, path, path.read_bytes()))
            except OSError as e:
                refs.errors.append((str(path), f"cannot be read ({e.strerror})"))
    results = scanner.references([data for _, _, data in photos])
    for (person, path, _), result in zip(photos, results, strict=True):
        if isinstance(result, str):
            refs.errors.append((str(path), result))
        else:
            refs.people.setdefault(person, []).append(result)
    return refs
