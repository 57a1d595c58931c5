"""Build the face engine benchmark set (phone-like photos, references, archives, truth), seeded."""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from canvas import Paste, add_noise, background, compose, save, sensor_noise
from shared_faces import (
    BACKGROUNDS,
    FACES_DIR,
    PROJECT_ROOT,
    REFERENCES,
    Box,
    Source,
    load_sources,
)

RECIPE = 1  # bump whenever the set would come out different, so old sets get rebuilt
SEED = 20240611
DEFAULT_OUT = PROJECT_ROOT / ".bench" / "engine"

CANVAS_SIZES = ((4000, 3000), (3000, 4000))
SCENES, BYSTANDER_SCENES, GROUPS = 60, 22, 16
ROTATIONS = (3, 6, 8) * 4
REENCODINGS = (".heic",) * 5 + (".webp",) * 5 + (".png",) * 3
DUPLICATES = 13
ARCHIVE_COPIES = ("2019", "2019_backup", "from_phone")  # folders of the archive holding 3 copies
# Photos kept exactly as shared: some exports hold the original files.
ORIGINALS = (
    "dev/_no_human_faces/dogs.jpg",
    "dev/_dlib_bald_guys/bald_guys.jpg",
    "dev/tom_cruise/Tom_Cruise_avp_2014_4.jpg",
    "dev-bbt/_group_unlabeled/bbt1.jpg",
    "dev/_dlib_voc_snapshots/2008_001322.jpg",
    "dev/obama/obama_partial_face.jpg",
    "dev/obama/obama-1080p.jpg",
    "dev/_multi/kit_with_rose.jpg",
    "dev/biden/biden2.jpg",
    "dev/alex_lacamoire/alex_lacamoire_3.png",
)
FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".heic": "heic", ".webp": "webp"}


@dataclass
class Canvas:
    """A planned 12 MP photo and the copies of it that go into the set."""

    name: str
    size: tuple[int, int]
    background: str
    pastes: list[Paste]
    kind: str
    rotations: list[int] = field(default_factory=list)
    reencodings: list[str] = field(default_factory=list)

    @property
    def persons(self) -> list[str]:
        return sorted({person for p in self.pastes for person in p.source.persons})


def face_width(rng: random.Random, low: float, high: float) -> int:
    """Log-uniform, so small faces in large photos are as common as close-ups."""
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def enrolled_paste(sources: list[Source], rng: random.Random, width: int) -> Paste:
    """A photo of a uniformly chosen enrolled person (Obama alone has nine photos)."""
    person = rng.choice(sorted(REFERENCES))
    source = rng.choice([s for s in sources if person in s.persons])
    return Paste(source, tuple(range(len(source.boxes))), width)


def bystander_paste(sources: list[Source], rng: random.Random, width: int) -> Paste:
    """One face of a bystander, cut out of whichever shared photo holds it."""
    source = rng.choice([s for s in sources if s.boxes and not s.persons])
    return Paste(source, (rng.randrange(len(source.boxes)),), width)


def plan_scene(name: str, sources: list[Source], rng: random.Random, enrolled: bool) -> Canvas:
    """A canvas with one to four photos pasted at face widths from 120 to 900 px."""
    count = rng.choices((1, 2, 3, 4), weights=(4, 3, 2, 1))[0]
    pastes = [bystander_paste(sources, rng, face_width(rng, 120, 900)) for _ in range(count)]
    if enrolled:
        pastes[0] = enrolled_paste(sources, rng, face_width(rng, 120, 900))
    size, scene = rng.choice(CANVAS_SIZES), rng.choice(BACKGROUNDS)
    return Canvas(name, size, scene, pastes, "scene" if enrolled else "scene_bystanders")


def plan_group(name: str, sources: list[Source], rng: random.Random) -> Canvas:
    """Three or four faces of similar size, enrolled people and bystanders mixed."""
    target, base = rng.choice((3, 4)), face_width(rng, 120, 400)

    def width() -> int:
        return round(base * rng.uniform(0.85, 1.15))

    pastes = [enrolled_paste(sources, rng, width())]
    if len(pastes[0].faces) == 1 and rng.random() < 0.5:
        pastes.append(enrolled_paste(sources, rng, width()))
    faces = sum(len(p.faces) for p in pastes)
    groups = [s for s in sources if not s.persons and 2 <= len(s.boxes) <= target - faces]
    if groups and rng.random() < 0.4:
        group = rng.choice(groups)
        pastes.append(Paste(group, tuple(range(len(group.boxes))), width()))
        faces += len(group.boxes)
    pastes += [bystander_paste(sources, rng, width()) for _ in range(target - faces)]
    rng.shuffle(pastes)
    return Canvas(name, rng.choice(CANVAS_SIZES), rng.choice(BACKGROUNDS), pastes, "group")


def plan(sources: list[Source], rng: random.Random) -> list[Canvas]:
    """Every canvas, with the rotated and re-encoded copies spread over them at random."""
    bystander_only = set(rng.sample(range(SCENES), BYSTANDER_SCENES))
    canvases = [
        plan_scene(f"scene_{i:03d}", sources, rng, i not in bystander_only) for i in range(SCENES)
    ]
    canvases += [plan_group(f"group_{i:03d}", sources, rng) for i in range(GROUPS)]
    picked = rng.sample(canvases, len(ROTATIONS) + len(REENCODINGS))
    for canvas, orientation in zip(picked, ROTATIONS, strict=False):
        canvas.rotations.append(orientation)
    for canvas, suffix in zip(picked[len(ROTATIONS) :], REENCODINGS, strict=True):
        canvas.reencodings.append(suffix)
    return canvases


def entry(persons: list[str], name: str, kind: str, **extra: object) -> dict:
    suffix = Path(name).suffix.lower()
    return {"persons": persons, "format": FORMATS[suffix], "kind": kind, **extra}


def render(
    canvas: Canvas, photos: Path, noise: np.ndarray, faces: tuple[Box, ...]
) -> dict[str, dict]:
    """Write a canvas and its copies; return their truth entries."""
    rng = random.Random(f"{SEED}-{canvas.name}")
    scene = background(FACES_DIR / canvas.background, canvas.size, rng, faces)
    img, widths = compose(scene, canvas.pastes, rng)
    img = add_noise(img, noise, rng)
    name = f"{canvas.name}.jpg"
    save(img, photos / name)
    truth = {name: entry(canvas.persons, name, canvas.kind, face_widths=widths)}
    for orientation in canvas.rotations:
        copy = f"{canvas.name}_rot{orientation}.jpg"
        save(img, photos / copy, orientation)
        truth[copy] = entry(canvas.persons, copy, "rotated", of=name, orientation=orientation)
    for suffix in canvas.reencodings:
        copy = f"{canvas.name}{suffix}"
        save(img, photos / copy)
        truth[copy] = entry(canvas.persons, copy, "reencoded", of=name)
    return truth


def add_originals(photos: Path, sources: list[Source]) -> dict[str, dict]:
    persons = {s.rel: sorted(s.persons) for s in sources}
    truth = {}
    for rel in ORIGINALS:
        name = f"original_{Path(rel).name}"
        shutil.copyfile(FACES_DIR / rel, photos / name)
        truth[name] = entry(persons.get(rel, []), name, "original")
    return truth


def add_duplicates(photos: Path, truth: dict[str, dict], rng: random.Random) -> dict[str, dict]:
    """Byte-identical copies under the names a second download or a re-export gives them."""
    # Large PNGs stay out: a duplicate of one would only add 30 MB of disk.
    names = sorted(n for n, e in truth.items() if e["format"] != "png")
    copies = {}
    for name in rng.sample(names, DUPLICATES):
        copy = f"{Path(name).stem} (1){Path(name).suffix}"
        shutil.copyfile(photos / name, photos / copy)
        copies[copy] = {**truth[name], "kind": "duplicate", "of": name}
    return copies


def write_references(out: Path) -> None:
    """One folder per person for our scan, and one flat folder for the face_recognition CLI."""
    for person, rels in REFERENCES.items():
        (out / "references" / person).mkdir(parents=True)
        for n, rel in enumerate(rels, start=1):
            src = FACES_DIR / rel
            shutil.copyfile(src, out / "references" / person / src.name)
            # The CLI names a known person after the file: one image, one name.
            shutil.copyfile(src, out / "references_cli" / f"{person}__{n}{src.suffix}")


def write_archives(out: Path, names: list[str]) -> None:
    """A ZIP of the photos and one holding them three times, stored (phones' JPEGs don't shrink)."""
    archives = out / "archives"
    archives.mkdir()
    with zipfile.ZipFile(archives / "photos.zip", "w", zipfile.ZIP_STORED) as zf:
        for name in names:
            zf.write(out / "photos" / name, name)
    with zipfile.ZipFile(archives / "photos_x3.zip", "w", zipfile.ZIP_STORED) as zf:
        for folder in ARCHIVE_COPIES:
            for name in names:
                zf.write(out / "photos" / name, f"{folder}/{name}")


def is_complete(out: Path) -> bool:
    """True when a set of this recipe is fully on disk (truth.json is written last)."""
    truth_file = out / "truth.json"
    if not truth_file.exists():
        return False
    truth = json.loads(truth_file.read_text())
    needed = [out / "archives" / "photos.zip", out / "archives" / "photos_x3.zip"]
    needed += [out / "photos" / name for name in truth["photos"]]
    return truth["recipe"] == RECIPE and all(p.exists() for p in needed)


def build(out: Path = DEFAULT_OUT, force: bool = False) -> dict:
    """Build the set into out unless a complete one of this recipe is there; return its truth."""
    if not force and is_complete(out):
        return json.loads((out / "truth.json").read_text())
    (out / "truth.json").unlink(missing_ok=True)
    for part in ("photos", "references", "references_cli", "archives"):
        shutil.rmtree(out / part, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    # The set holds copies of shared face photos: keep git away from it wherever it is built.
    (out / ".gitignore").write_text("*\n")
    (out / "photos").mkdir()
    (out / "references_cli").mkdir()
    sources = load_sources(out / "face_boxes.json")
    rng = random.Random(SEED)
    noise = sensor_noise((4000, 4000, 3), SEED)
    photos: dict[str, dict] = {}
    boxes = {s.rel: s.boxes for s in sources}
    for canvas in plan(sources, rng):
        photos.update(render(canvas, out / "photos", noise, boxes.get(canvas.background, ())))
    photos.update(add_originals(out / "photos", sources))
    photos.update(add_duplicates(out / "photos", photos, rng))
    write_references(out)
    write_archives(out, sorted(photos))
    truth = {"recipe": RECIPE, "seed": SEED, "photos": dict(sorted(photos.items()))}
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def summary(truth: dict, out: Path) -> str:
    photos = truth["photos"]
    kinds = Counter(e["kind"] for e in photos.values())
    formats = Counter(e["format"] for e in photos.values())
    nobody = sum(not e["persons"] for e in photos.values())
    size = sum(f.stat().st_size for f in (out / "photos").iterdir()) / 1e6
    return (
        f"{len(photos)} photos ({size:.0f} MB) in {out}\n"
        f"  kinds: {dict(kinds)}\n  formats: {dict(formats)}\n"
        f"  without an enrolled person: {nobody} ({nobody / len(photos):.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="rebuild even if the set is complete")
    args = parser.parse_args()
    started = time.monotonic()
    truth = build(args.out, args.force)
    print(summary(truth, args.out))
    print(f"  ready in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
