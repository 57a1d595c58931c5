"""What the page tests and the browser journey share: the real face photos and a friend's export."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
FACES = PROJECT.parent / "shared" / "faces"
OBAMA = Path("dev/obama/obama.jpg")
DOGS = Path("dev/_no_human_faces/dogs.jpg")

# A friend's small export: two photos of obama, one of dogs, one group shot of other people.
EXPORT_PHOTOS = {
    "photos/2019/obama-480p.jpg": Path("dev/obama/obama-480p.jpg"),
    "photos/2020/obama_and_biden.jpg": Path("dev/_multi/obama_and_biden.jpg"),
    "photos/2020/dogs.jpg": DOGS,
    "photos/2021/bbt5.jpg": Path("dev-bbt/_group_unlabeled/bbt5.jpg"),
}

# An aunt's export for two cousins: one photo of each (alice enrolls obama, ben biden), one of both,
# one of no one.
FAMILY_EXPORT = {
    "p/obama.jpg": Path("dev/obama/obama-480p.jpg"),
    "p/biden.jpg": Path("dev/biden/biden2.jpg"),
    "p/both.jpg": Path("dev/_multi/obama_and_biden.jpg"),
    "p/dogs.jpg": DOGS,
}


def face_photo(relative: Path) -> Path:
    """A real photo of ../shared/faces; skips (or fails, in CI) when they are missing."""
    path = FACES / relative
    if not path.is_file():
        message = f"the real face photos are missing: expected {path}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must never go green by skipping every face test
        pytest.skip(message)
    return path


def build_export(folder: Path, photos: dict[str, Path] = EXPORT_PHOTOS) -> Path:
    """A ZIP like a plain photo-folder export, built from the real photos (never copied to git)."""
    archive = folder / "my-photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, relative in photos.items():
            z.write(face_photo(relative), name)
    return archive
