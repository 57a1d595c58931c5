"""The shared face photos the benchmark set is built from, and their face boxes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import face_recognition
import numpy as np
from PIL import Image, ImageOps

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The photos are shared between projects and must never be copied into this repository.
FACES_DIR = PROJECT_ROOT.parent / "shared" / "faces"

Box = tuple[int, int, int, int]  # top, right, bottom, left, as face_recognition gives them

REFERENCES: dict[str, list[str]] = {
    "obama": ["dev/obama/obama.jpg", "dev/obama/obama2.jpg"],
    "biden": ["dev/biden/biden.jpg"],
    "kit_harington": ["dev/kit_harington/john1.jpeg"],
    "rose_leslie": ["dev/rose_leslie/rose_leslie_1.jpg"],
    "alex_lacamoire": ["dev/alex_lacamoire/alex_lacamoire_1.jpg"],
}

# Other photos of the enrolled people: what the scan must find.
ENROLLED_SOURCES: dict[str, tuple[str, ...]] = {
    "dev/obama/obama1.jpg": ("obama",),
    "dev/obama/obama3.jpg": ("obama",),
    "dev/obama/obama_small.jpg": ("obama",),
    "dev/obama/obama-240p.jpg": ("obama",),
    "dev/obama/obama-480p.jpg": ("obama",),
    "dev/obama/obama-720p.jpg": ("obama",),
    "dev/obama/obama-1080p.jpg": ("obama",),
    "dev/obama/obama_partial_face.jpg": ("obama",),
    "dev/obama/obama_partial_face2.jpg": ("obama",),
    "dev/biden/biden2.jpg": ("biden",),
    "dev/kit_harington/john2.jpeg": ("kit_harington",),
    "dev/kit_harington/johnsnow_test1.jpg": ("kit_harington",),
    "dev/rose_leslie/rose_leslie_2.jpg": ("rose_leslie",),
    "dev/alex_lacamoire/alex_lacamoire_2.jpg": ("alex_lacamoire",),
    "dev/alex_lacamoire/alex_lacamoire_3.png": ("alex_lacamoire",),
    "dev/_multi/obama_and_biden.jpg": ("obama", "biden"),
    "dev/_multi/kit_with_rose.jpg": ("kit_harington", "rose_leslie"),
}

BBT_PEOPLE = ("amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart")
# People nobody enrolled. _multi/two_people.jpg stays out: its people are unlabeled.
BYSTANDER_SOURCES: tuple[str, ...] = (
    *(f"dev-bbt/{name}/{name}{n}.png" for name in BBT_PEOPLE for n in range(1, 6)),
    *(f"dev-bbt/_group_unlabeled/bbt{n}.jpg" for n in range(1, 6)),
    "dev/tom_cruise/Tom_Cruise_avp_2014_4.jpg",
    "dev/lin_manuel_miranda/lin-manuel-miranda.png",
    "dev/_dlib_voc_snapshots/2007_007763.jpg",
    "dev/_dlib_voc_snapshots/2008_001009.jpg",
    "dev/_dlib_voc_snapshots/2008_001322.jpg",
    "dev/_dlib_voc_snapshots/2008_002079.jpg",
    "dev/_dlib_bald_guys/bald_guys.jpg",
)

# Scenes without faces worth keeping, blurred into canvas backgrounds.
BACKGROUNDS: tuple[str, ...] = (
    "dev/_no_human_faces/dogs.jpg",
    "dev/_dlib_voc_snapshots/2007_007763.jpg",
    "dev/_dlib_voc_snapshots/2008_001009.jpg",
    "dev/_dlib_voc_snapshots/2008_001322.jpg",
    "dev/_dlib_voc_snapshots/2008_002079.jpg",
)


@dataclass(frozen=True)
class Source:
    """One shared photo, the enrolled people in it and the faces the detector sees in it."""

    rel: str
    persons: tuple[str, ...]
    boxes: tuple[Box, ...]

    @property
    def path(self) -> Path:
        return FACES_DIR / self.rel


def load_upright(path: Path) -> Image.Image:
    """An RGB image the way a viewer shows it."""
    with Image.open(path) as img:
        return ImageOps.exif_transpose(img).convert("RGB")


def detect_boxes(path: Path) -> list[Box]:
    """Face boxes found by face_recognition's HOG detector, upsampled for small photos."""
    img = load_upright(path)
    # Small photos (the 150 px crops, VOC snapshots) hold faces below the detector's 80 px window.
    upsample = 2 if max(img.size) <= 1000 else 1
    found = face_recognition.face_locations(np.asarray(img), number_of_times_to_upsample=upsample)
    return [tuple(int(v) for v in box) for box in found]  # type: ignore[misc]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_sources(cache_file: Path) -> list[Source]:
    """Every usable source photo with its face boxes, detected once and cached by file digest."""
    cache: dict[str, dict] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    wanted = {**ENROLLED_SOURCES, **dict.fromkeys(BYSTANDER_SOURCES, ())}
    sources = []
    for rel, persons in wanted.items():
        path = FACES_DIR / rel
        digest = file_digest(path)
        entry = cache.get(rel)
        if entry is None or entry["sha256"] != digest:
            entry = {"sha256": digest, "boxes": detect_boxes(path)}
            cache[rel] = entry
        sources.append(Source(rel, tuple(persons), tuple(tuple(b) for b in entry["boxes"])))
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(cache, indent=1, sort_keys=True))
    return sources
