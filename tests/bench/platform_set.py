"""Build the matching benchmark sets, seeded: photos as platforms serve them, truth per face.

`platform`: posts as Facebook, Instagram and phones serve them (small faces in group shots, tilted
heads, blur, night shots, heavy JPEG, phone screenshots, no EXIF), a dozen owners among strangers
who recur. `diverse`: calibration people only, half of each demographic group enrolled, so the
false matches can be counted per group. `export`: a phone's own export, as the team's first
held-out set was: 12-megapixel group shots with EXIF rotations, HEIC, WebP and duplicates, half of
each calibration group enrolled (drawn apart from `diverse`'s), the people of dev/ and dev-bbt/
among the strangers. No setting of the rule was read off `export`.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from canvas import add_noise, background, feather_mask, layout, sensor_noise
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps
from shared_faces import (
    BACKGROUNDS,
    FACES_DIR,
    PROJECT_ROOT,
    Box,
    detect_boxes,
    file_digest,
    load_upright,
)

RECIPE = 3  # bump whenever a set would come out different, so old sets get rebuilt
SEED = 20240917
# The rule's settings were read off the first two only. "export-2" ... "export-6" are more draws
# of the export recipe (each its own split of calib/ into owners and strangers, its own posts):
# one held-out-like figure is one draw, and a single look-alike pair can decide it. Those past
# "export-2" are not in `make bench`: "export-3" was kept aside to check a change read off
# "export-2", "export-4" was drawn to check the second encoder (EXPERIMENTS.md), and "export-5"
# to check the engine with it, after everything else had been read (stop 30 then used it to turn
# a change down). "export-6" was looked at once, at stop 31, after that stop's change was chosen
# (it showed each owner alone failing on two look-alike pairs); "export-7" was first looked at at
# stop 32, with the YuNet finder; "export-8" at stop 33, after the grainy photo's second look
# was chosen (idol_lia's photos proposed for idol_yuna again), and again at stop 34, where it
# turned down the face mesh's alignment alone; "export-9" at stop 34, once, after the mean of two
# alignments was chosen; "export-10" is not yet looked at.
SETS = ("platform", "diverse", "export", "export-2")
CALIB = FACES_DIR / "calib"
UNLABELED = "unlabeled (dev)"  # people outside calib/ have no observed group

# Photos of named people outside calib/ with one face each. Obama's 240p/480p/1080p copies of the
# 720p frame and his partial faces stay out.
DEV_PHOTOS: dict[str, tuple[str, ...]] = {
    "obama": tuple(
        f"dev/obama/{n}"
        for n in (
            "obama.jpg",
            "obama1.jpg",
            "obama2.jpg",
            "obama3.jpg",
            "obama_small.jpg",
            "obama-720p.jpg",
        )
    ),
    "biden": ("dev/biden/biden.jpg", "dev/biden/biden2.jpg"),
    "kit_harington": tuple(
        f"dev/kit_harington/{n}" for n in ("john1.jpeg", "john2.jpeg", "johnsnow_test1.jpg")
    ),
    "rose_leslie": ("dev/rose_leslie/rose_leslie_1.jpg", "dev/rose_leslie/rose_leslie_2.jpg"),
    "alex_lacamoire": tuple(
        f"dev/alex_lacamoire/alex_lacamoire_{n}" for n in ("1.jpg", "2.jpg", "3.png")
    ),
    "lin_manuel_miranda": ("dev/lin_manuel_miranda/lin-manuel-miranda.png",),
    "tom_cruise": ("dev/tom_cruise/Tom_Cruise_avp_2014_4.jpg",),
    **{
        name: tuple(f"dev-bbt/{name}/{name}{n}.png" for n in range(1, 6))
        for name in ("amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart")
    },
}

# platform: owners from every calib group and from dev/, dev-bbt/; more strangers than owners.
PLATFORM_OWNERS = (
    *("obama", "penny", "raj", "idol_lia", "lfwsite_jackie_chan", "lfwsite_halle_berry"),
    *("lfwsite_kofi_annan", "lfwsite_salma_hayek", "lfwsite_pervez_musharraf"),
    *("lfwsite_paradorn_srichaphan", "lfwsite_hamid_karzai", "lfwsite_tony_blair"),
)
PLATFORM_STRANGERS = (
    *("amy", "bernadette", "howard", "leonard", "sheldon", "stuart", "biden", "kit_harington"),
    *("rose_leslie", "alex_lacamoire", "lin_manuel_miranda", "tom_cruise", "idol_jin"),
    *("idol_ryujin", "lfwsite_yao_ming", "lfwsite_junichiro_koizumi", "lfwsite_colin_powell"),
    *("lfwsite_venus_williams", "lfwsite_vicente_fox", "lfwsite_ana_guevara"),
    *("lfwsite_kalpana_chawla", "lfwsite_megawati_sukarnoputri", "lfwsite_meryl_streep"),
)
# The friend's circle: these strangers are in many posts, as the same few people are in an export.
REGULARS = ("sheldon", "idol_jin", "lfwsite_colin_powell", "lfwsite_meryl_streep", "kit_harington")
REGULAR_WEIGHT = 4

REFS_PER_OWNER = 2
MAX_UPSCALE = 3.4  # a 60 px LFW face may become 200 px; beyond that it is only a blur
SCREEN = (1170, 2532)  # an iPhone screenshot
PLATFORM_JPEG_QUALITY = 85  # what Facebook and Instagram serve
LOW_JPEG_QUALITY = 30
# Conditions, dealt from a deck per owner (drawn at random for posts without one), so that every
# owner gets the same mix and the groups differ by who is in them, not by the luck of the draw.
EFFECT_DECK = ("none", "none", "none", "blur", "night", "jpeg30")
TILT_DECK = (0, 0, 0, 0, 20, 0, 0, 0, 0, 35)  # degrees, either way
WIDTH_BINS = 5  # equal steps of the log width range
T = TypeVar("T")


@dataclass(frozen=True)
class Identity:
    """A person, their observed group, and the shared photos (one face each) they are in."""

    person: str
    group: str
    photos: tuple[str, ...]


@dataclass(frozen=True)
class Recipe:
    """How one set is composed: who is enrolled and what its posts look like."""

    name: str
    posts: int
    kinds: dict[str, int]  # kind -> weight
    faces: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]  # kind -> counts, weights
    widths: dict[str, tuple[float, float]]  # kind -> face width range in px
    no_owner_share: float
    same_group_share: float  # of the posts with several faces: all from one group
    phone_export: bool = False  # dev/'s people among the strangers, and copies saved from a chat


CANVASES = {
    "instagram": ((1080, 1080), (1080, 1350)),
    "facebook": ((2048, 1536), (1536, 2048), (2048, 1365), (2048, 1152)),
    "phone": ((2016, 1512), (1512, 2016)),
    "camera": ((4032, 3024), (3024, 4032)),  # a phone's camera roll, full size
}
# How a phone's export stores its photos: mostly JPEG with an orientation tag, HEIC from iPhones,
# WebP from messengers; a few photos twice (a copy saved back from a chat, smaller and re-encoded).
CAMERA_FORMATS = ("jpeg", "jpeg", "jpeg", "jpeg", "jpeg", "heic", "heic", "webp")
SUFFIXES = {"jpeg": "jpg", "heic": "heic", "webp": "webp"}
# The kinds a phone stores itself, with an orientation tag (drawn from these) and its camera; the
# others come from a platform, which strips all EXIF.
ORIENTATIONS = {"phone": (6, 6, 8, 3), "camera": (6, 6, 8, 3, 1, 1)}
DUPLICATE_SHARE = 0.1
DUPLICATE_SIDE = 1600
SCREENSHOT_OF = ("instagram", "facebook")

PLATFORM = Recipe(
    name="platform",
    posts=200,
    kinds={"instagram": 34, "facebook": 34, "phone": 12, "screenshot": 20},
    faces={
        "instagram": ((3, 4, 5, 6), (3, 3, 2, 2)),
        "facebook": ((1, 2, 3), (5, 3, 2)),
        "phone": ((1, 2, 3), (4, 3, 3)),
    },
    widths={"instagram": (40, 70), "facebook": (60, 200), "phone": (60, 200)},
    no_owner_share=0.35,
    same_group_share=0.0,
)
DIVERSE = Recipe(
    name="diverse",
    posts=180,
    kinds={"instagram": 45, "facebook": 40, "phone": 5, "screenshot": 10},
    faces={kind: ((1, 2, 3, 4), (45, 25, 18, 12)) for kind in ("instagram", "facebook", "phone")},
    widths={kind: (40, 120) for kind in ("instagram", "facebook", "phone")},
    no_owner_share=0.35,
    same_group_share=0.5,
)
EXPORT = Recipe(
    name="export",
    posts=110,
    kinds={"camera": 1},
    faces={"camera": ((1, 2, 3, 4, 5, 6), (30, 20, 15, 15, 10, 10))},
    widths={"camera": (90, 320)},
    no_owner_share=0.35,
    same_group_share=0.5,
    phone_export=True,
)
DRAWS = tuple(replace(EXPORT, name=f"export-{n}") for n in (2, 3, 4, 5, 6, 7, 8, 9, 10))
RECIPES = {r.name: r for r in (PLATFORM, DIVERSE, EXPORT, *DRAWS)}


@dataclass(frozen=True)
class FacePlan:
    """One face to paste: whose, from which shared photo, how wide and how tilted."""

    person: str
    rel: str
    width: int
    tilt: int  # degrees counterclockwise, 0 for upright


@dataclass(frozen=True)
class Post:
    """A planned photo of the set."""

    name: str
    kind: str  # instagram, facebook, phone, screenshot
    inner: str  # the kind of photo a screenshot shows; the kind itself otherwise
    size: tuple[int, int]
    background: str
    faces: tuple[FacePlan, ...]
    effect: str
    orientation: int  # EXIF orientation a phone stored; 1 when the photo carries no EXIF
    fmt: str = "jpeg"  # a camera's photo: jpeg, heic or webp

    @property
    def filename(self) -> str:
        if self.kind == "screenshot":
            return f"{self.name}.png"
        return f"{self.name}.{SUFFIXES[self.fmt]}"


# ---------------------------------------------------------------- identities and face boxes


def calib_identities() -> list[Identity]:
    """The calibration people with their observed group, from IDENTITIES.tsv."""
    with (CALIB / "IDENTITIES.tsv").open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [
        Identity(
            row["identity"],
            row["group_observed"],
            tuple(
                f"calib/{row['identity']}/{p.name}"
                for p in sorted((CALIB / row["identity"]).iterdir())
            ),
        )
        for row in rows
    ]


def detected_boxes(rels: list[str], cache_file: Path) -> dict[str, list[Box]]:
    """Face boxes of every photo, detected once and cached by file digest (as build_set does)."""
    cache: dict[str, dict] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    boxes = {}
    for rel in rels:
        digest = file_digest(FACES_DIR / rel)
        entry = cache.get(rel)
        if entry is None or entry["sha256"] != digest:
            entry = {"sha256": digest, "boxes": detect_boxes(FACES_DIR / rel)}
            cache[rel] = entry
        boxes[rel] = [tuple(b) for b in entry["boxes"]]
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(cache, indent=1, sort_keys=True))
    return boxes


def identities(
    names: tuple[str, ...], cache_file: Path
) -> tuple[dict[str, Identity], dict[str, list[Box]]]:
    """The named people restricted to photos where exactly one face is found, and all boxes."""
    known = {i.person: i for i in calib_identities()}
    known.update({p: Identity(p, UNLABELED, rels) for p, rels in DEV_PHOTOS.items()})
    rels = [rel for name in names for rel in known[name].photos] + list(BACKGROUNDS)
    boxes = detected_boxes(rels, cache_file)
    chosen = {}
    for name in names:
        usable = tuple(sorted(rel for rel in known[name].photos if len(boxes[rel]) == 1))
        chosen[name] = Identity(name, known[name].group, usable)
    return chosen, boxes


def split_owners(calib: list[Identity], rng: random.Random) -> list[str]:
    """Half of each group enrolled, at random. Odd groups alternate which side gets the extra
    one, starting with the owners for the group of one (Middle Eastern/Central Asian): a single
    identity would otherwise never be an owner, so no false match could ever be counted for it."""
    groups: dict[str, list[str]] = {}
    for identity in calib:
        groups.setdefault(identity.group, []).append(identity.person)
    owners, extra_to_owners = [], True
    for group in sorted(groups, key=lambda g: (len(groups[g]) != 1, g)):  # the group of one first
        people = sorted(groups[group])
        rng.shuffle(people)
        take = len(people) // 2
        if len(people) % 2:
            take += extra_to_owners
            extra_to_owners = not extra_to_owners
        owners += people[:take]
    return sorted(owners)


# ---------------------------------------------------------------- planning


def log_uniform(rng: random.Random, low: float, high: float) -> int:
    """Small faces are as common as large ones."""
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


class Picker:
    """Chooses people and their photos evenly: the least used first, ties broken at random, so
    each owner is found (or missed) about as often as every other, whatever their group."""

    def __init__(self, people: dict[str, Identity], rng: random.Random) -> None:
        self.people, self.rng = people, rng
        self.used: Counter[str] = Counter()
        self.photo_used: Counter[str] = Counter()
        self.decks: dict[tuple[str, str], list] = {}

    def person(self, candidates: list[str], weights: dict[str, int] | None = None) -> str:
        weights = weights or {}
        # Recurring people count as used less often, so they come back that many times more.
        score = {p: self.used[p] / weights.get(p, 1) + self.rng.random() * 1e-3 for p in candidates}
        chosen = min(candidates, key=lambda p: score[p])
        self.used[chosen] += 1
        return chosen

    def photo(self, person: str) -> str:
        photos = self.people[person].photos
        least = min(self.photo_used[r] for r in photos)
        rel = self.rng.choice([r for r in photos if self.photo_used[r] == least])
        self.photo_used[rel] += 1
        return rel

    def deal(self, person: str, deck: str, cards: Sequence[T]) -> T:
        """The next card of this person's deck, shuffled anew once all were dealt."""
        hand = self.decks.setdefault((person, deck), [])
        if not hand:
            hand.extend(cards)
            self.rng.shuffle(hand)
        return hand.pop()


def pick_people(
    recipe: Recipe,
    count: int,
    with_owner: bool,
    owners: list[str],
    strangers: list[str],
    people: dict[str, Identity],
    picker: Picker,
    rng: random.Random,
) -> list[str]:
    """The people in one post: an owner or two (or none), the rest strangers, all different."""
    chosen: list[str] = []
    n_owners = 0
    if with_owner:
        n_owners = 2 if count >= 3 and rng.random() < 0.25 else 1
    same_group = count > 1 and rng.random() < recipe.same_group_share
    weights = dict.fromkeys(REGULARS, REGULAR_WEIGHT) if recipe is PLATFORM else {}
    for i in range(count):
        pool = owners if i < n_owners else strangers
        pool = [p for p in pool if p not in chosen]
        if same_group and chosen:
            group = people[chosen[0]].group
            pool = [p for p in pool if people[p].group == group] or pool
        chosen.append(picker.person(pool, weights))
    rng.shuffle(chosen)
    return chosen


def plan_post(
    recipe: Recipe,
    index: int,
    with_owner: bool,
    roles: tuple[list[str], list[str]],
    people: dict[str, Identity],
    picker: Picker,
    rng: random.Random,
) -> Post:
    kind = rng.choices(list(recipe.kinds), weights=list(recipe.kinds.values()))[0]
    inner = rng.choice(SCREENSHOT_OF) if kind == "screenshot" else kind
    counts, weights = recipe.faces[inner]
    count = rng.choices(counts, weights=weights)[0]
    persons = pick_people(recipe, count, with_owner, *roles, people, picker, rng)
    size = rng.choice(CANVASES[inner])
    # Widths are what the set's file shows: a screenshot shrinks or enlarges the photo it shows.
    shown = screen_scale(size) if kind == "screenshot" else 1.0
    low, high = recipe.widths[inner]
    owners = set(roles[0])
    lead = next((p for p in persons if p in owners), None)  # whose deck sets the post's effect

    def dealt_width(person: str) -> int:
        step = (math.log(high) - math.log(low)) / WIDTH_BINS
        bin_ = picker.deal(person, "width", range(WIDTH_BINS))
        return round(math.exp(math.log(low) + (bin_ + rng.random()) * step))

    base = dealt_width(lead) if lead else log_uniform(rng, low, high)
    faces = []
    for person in persons:
        # A group shot has faces of about one size; a photo of one or two varies more.
        if person == lead:
            width = base
        elif count >= 3:
            width = round(base * rng.uniform(0.85, 1.15))
        else:
            width = dealt_width(person) if person in owners else log_uniform(rng, low, high)
        width = round(min(max(width, low), high) / shown)
        tilt = picker.deal(person, "tilt", TILT_DECK) if person in owners else rng.choice(TILT_DECK)
        faces.append(FacePlan(person, picker.photo(person), width, tilt * rng.choice((-1, 1))))
    effect = picker.deal(lead, "effect", EFFECT_DECK) if lead else rng.choice(EFFECT_DECK)
    orientation = rng.choice(ORIENTATIONS[kind]) if kind in ORIENTATIONS else 1
    fmt = picker.deal("", "format", CAMERA_FORMATS) if kind == "camera" else "jpeg"
    name = f"{index:03d}_{kind}"
    scene = rng.choice(BACKGROUNDS)
    return Post(name, kind, inner, size, scene, tuple(faces), effect, orientation, fmt)


def plan(
    recipe: Recipe, people: dict[str, Identity], owners: list[str], rng: random.Random
) -> list[Post]:
    """Every post; a share of them without any owner."""
    strangers = sorted(p for p in people if p not in owners)
    no_owner = set(rng.sample(range(recipe.posts), round(recipe.posts * recipe.no_owner_share)))
    picker = Picker(people, rng)
    roles = (owners, strangers)
    return [
        plan_post(recipe, i, i not in no_owner, roles, people, picker, rng)
        for i in range(recipe.posts)
    ]


# ---------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Cutout:
    """A face photo cut around its face, scaled, maybe tilted; where the face sits in it."""

    img: Image.Image
    mask: Image.Image
    centre: tuple[float, float]
    face: tuple[float, float]  # width, height of the face box


def cut_face(face: FacePlan, box: Box, factor: float) -> Cutout:
    """The region around the face with some hair and shoulders, the face at the planned width."""
    img = load_upright(FACES_DIR / face.rel)
    top, right, bottom, left = box
    fw = right - left
    crop = (
        max(round(left - 0.6 * fw), 0),
        max(round(top - 0.7 * fw), 0),
        min(round(right + 0.6 * fw), img.width),
        min(round(bottom + 1.0 * fw), img.height),
    )
    img = img.crop(crop)
    scale = min(face.width / fw, MAX_UPSCALE) * factor
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    sx, sy = size[0] / img.width, size[1] / img.height
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    img = img.resize(size, resample)
    mask = feather_mask(size)
    cx, cy = ((left + right) / 2 - crop[0]) * sx, ((top + bottom) / 2 - crop[1]) * sy
    if face.tilt:
        w, h = size
        img = img.rotate(face.tilt, Image.Resampling.BICUBIC, expand=True)
        mask = mask.rotate(face.tilt, Image.Resampling.BICUBIC, expand=True)
        # Pillow turns counterclockwise about the centre; y grows downwards.
        a = math.radians(face.tilt)
        dx, dy = cx - w / 2, cy - h / 2
        cx = img.width / 2 + dx * math.cos(a) + dy * math.sin(a)
        cy = img.height / 2 - dx * math.sin(a) + dy * math.cos(a)
    return Cutout(img, mask, (cx, cy), (fw * sx, (bottom - top) * sy))


def compose(
    scene: Image.Image, post: Post, boxes: dict[str, list[Box]], rng: random.Random
) -> tuple[Image.Image, list[Box]]:
    """Paste every face into the scene, shrinking all until they fit; the face boxes pasted."""
    factor = 1.0
    while True:
        cutouts = [cut_face(f, boxes[f.rel][0], factor) for f in post.faces]
        corners = layout(scene.size, [c.img.size for c in cutouts], rng)
        if corners is not None:
            break
        factor *= 0.9
    placed = []
    for cut, (x, y) in zip(cutouts, corners, strict=True):
        img = ImageEnhance.Brightness(cut.img).enhance(rng.uniform(0.9, 1.1))
        scene.paste(img, (x, y), cut.mask)
        (cx, cy), (w, h) = cut.centre, cut.face
        cx, cy = cx + x, cy + y
        placed.append((round(cy - h / 2), round(cx + w / 2), round(cy + h / 2), round(cx - w / 2)))
    return scene, placed


def blur(img: Image.Image, rng: random.Random) -> Image.Image:
    """Camera shake or focus missed: stronger on larger frames, as the faces there are larger."""
    radius = rng.uniform(1.2, 2.4) * math.sqrt(max(img.size) / 1080)
    return img.filter(ImageFilter.GaussianBlur(radius))


def night(img: Image.Image, rng: random.Random) -> Image.Image:
    """A dark room or a street at night: little light, warm cast, strong sensor noise."""
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.22, 0.4))
    pixels = np.asarray(img, dtype=np.float32) * np.array([1.08, 1.0, 0.85], dtype=np.float32)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(6, 12), pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], words: str, size: int, fill: str) -> None:
    draw.text(xy, words, fill=fill, font=ImageFont.load_default(size))


CAPTION_WORDS = "great night with everyone so much fun again soon thanks for coming love you all"


SCREEN_PHOTO_TOP, SCREEN_BELOW_PHOTO = 430, 560  # bars, header and caption take the rest


def screen_scale(size: tuple[int, int]) -> float:
    """How much a screenshot enlarges or shrinks the photo it shows."""
    room = SCREEN[1] - SCREEN_PHOTO_TOP - SCREEN_BELOW_PHOTO
    return min(SCREEN[0] / size[0], room / size[1])


def screenshot(img: Image.Image, rng: random.Random) -> tuple[Image.Image, float, tuple[int, int]]:
    """The photo as a phone shows it in a feed app: bars, a header, icons and a caption around
    it. Returns the screenshot and the scale and offset that map the photo into it."""
    dark = rng.random() < 0.4
    ink, paper, grey = ("white", "black", "#333333") if dark else ("black", "white", "#eeeeee")
    shot = Image.new("RGB", SCREEN, paper)
    draw = ImageDraw.Draw(shot)
    text(draw, (70, 40), f"{rng.randint(7, 23)}:{rng.randint(0, 59):02d}", 44, ink)
    draw.rectangle((960, 50, 1080, 90), outline=ink, width=4)  # battery
    text(draw, (50, 170), "Feed", 64, ink)
    draw.rectangle((0, 270, SCREEN[0], 274), fill=grey)
    draw.ellipse((40, 300, 140, 400), fill=rng.choice(("#c13584", "#4267b2", "#888888")))
    text(draw, (170, 325), f"friend_{rng.randint(10, 99)}", 44, ink)
    top, scale = SCREEN_PHOTO_TOP, screen_scale(img.size)
    size = (round(img.width * scale), round(img.height * scale))
    left = (SCREEN[0] - size[0]) // 2
    shot.paste(img.resize(size, Image.Resampling.LANCZOS), (left, top))
    y = top + size[1] + 40
    for x in (50, 170, 290):
        draw.ellipse((x, y, x + 80, y + 80), outline=ink, width=6)
    words = CAPTION_WORDS.split()
    rng.shuffle(words)
    text(draw, (50, y + 130), " ".join(words[:6]), 40, ink)
    text(draw, (50, y + 190), " ".join(words[6:11]), 40, ink)
    draw.rectangle((0, SCREEN[1] - 220, SCREEN[0], SCREEN[1]), fill=grey)
    for i in range(5):
        x = 90 + i * 230
        draw.rectangle((x, SCREEN[1] - 170, x + 70, SCREEN[1] - 100), outline=ink, width=6)
    return shot, scale, (left, top)


STORE_ROTATED = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


def save_post(img: Image.Image, post: Post, path: Path) -> None:
    """Platforms re-encode and strip all EXIF; a phone keeps its pixels as the sensor read them,
    with an orientation tag and its make and model; a screenshot is a PNG."""
    if post.kind == "screenshot":
        img.save(path, "PNG", compress_level=3)
        return
    quality = LOW_JPEG_QUALITY if post.effect == "jpeg30" else PLATFORM_JPEG_QUALITY
    if post.kind not in ORIENTATIONS:
        img.save(path, "JPEG", quality=quality)  # no exif= argument: no EXIF segment at all
        return
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 12"
    exif[0x0112] = post.orientation
    if post.orientation in STORE_ROTATED:
        img = img.transpose(STORE_ROTATED[post.orientation])
    if post.fmt == "heic":
        img.save(path, "HEIF", quality=80, exif=exif.tobytes())
    elif post.fmt == "webp":
        img.save(path, "WEBP", quality=80, exif=exif.tobytes())
    else:
        img.save(path, "JPEG", quality=quality if post.effect == "jpeg30" else 92, exif=exif)


def save_duplicate(src: Path, dest: Path) -> float:
    """A copy saved back from a chat: upright, smaller, re-encoded, without EXIF; its scale."""
    with Image.open(src) as opened:
        img = ImageOps.exif_transpose(opened).convert("RGB")
    scale = min(1.0, DUPLICATE_SIDE / max(img.size))
    if scale < 1.0:
        size = (round(img.width * scale), round(img.height * scale))
        img = img.resize(size, Image.Resampling.LANCZOS)
    img.save(dest, "JPEG", quality=75)
    return scale


EFFECT_FUNCS: dict[str, Callable[[Image.Image, random.Random], Image.Image]] = {
    "blur": blur,
    "night": night,
}


@dataclass(frozen=True)
class RenderContext:
    """What every post of a set is rendered with."""

    people: dict[str, Identity]
    owners: set[str]
    boxes: dict[str, list[Box]]
    noise: np.ndarray  # one grain field, shifted per post


def render(post: Post, ctx: RenderContext, photos: Path) -> dict[str, object]:
    """Write one post; return its truth entry, face boxes in the upright picture."""
    rng = random.Random(f"{SEED}-{post.name}")
    scene = background(
        FACES_DIR / post.background, post.size, rng, tuple(ctx.boxes[post.background])
    )
    img, placed = compose(scene, post, ctx.boxes, rng)
    img = add_noise(img, ctx.noise, rng)
    if post.effect in EFFECT_FUNCS:
        img = EFFECT_FUNCS[post.effect](img, rng)
    widths = [b[1] - b[3] for b in placed]
    if post.kind == "screenshot":
        img, scale, (dx, dy) = screenshot(img, rng)
        placed = [
            (
                round(t * scale) + dy,
                round(r * scale) + dx,
                round(b * scale) + dy,
                round(lf * scale) + dx,
            )
            for t, r, b, lf in placed
        ]
        widths = [round(w * scale) for w in widths]
    save_post(img, post, photos / post.filename)
    faces = [
        {
            "person": f.person,
            "box": list(box),
            "owner": f.person in ctx.owners,
            "group": ctx.people[f.person].group,
            "width": w,
            "tilt": f.tilt,
            "source": f.rel,
        }
        for f, box, w in zip(post.faces, placed, widths, strict=True)
    ]
    return {
        "kind": post.kind,
        "of": post.inner,
        "size": list(img.size),
        "effect": post.effect,
        "exif": f"orientation {post.orientation}, camera" if post.kind in ORIENTATIONS else "none",
        "faces": faces,
    }


# ---------------------------------------------------------------- references and the set


def duplicates(photos: dict[str, dict], folder: Path, rng: random.Random) -> dict[str, dict]:
    """Some photos a second time, as a chat's copy: the same faces, each to be found again."""
    chosen = rng.sample(sorted(photos), round(len(photos) * DUPLICATE_SHARE))
    copies = {}
    for name in chosen:
        saved = f"{Path(name).stem} (1).jpg"
        scale = save_duplicate(folder / name, folder / saved)
        entry = copy.deepcopy(photos[name])
        for face in entry["faces"]:
            face["box"] = [round(v * scale) for v in face["box"]]
            face["width"] = round(face["width"] * scale)
        entry.update(size=[round(v * scale) for v in entry["size"]], exif="none", copy_of=name)
        copies[saved] = entry
    return copies


def write_reference(src: Path, dest: Path) -> None:
    """A reference as the owner would upload it: the file itself when it is a JPEG."""
    if src.suffix.lower() in (".jpg", ".jpeg"):
        shutil.copyfile(src, dest)
    else:
        load_upright(src).save(dest, "JPEG", quality=95)


def write_references(out: Path, people: dict[str, Identity], refs: dict[str, list[str]]) -> None:
    """references/<person>/N.jpg for our scan; references_cli/<person>__N.jpg for the CLI."""
    for person, rels in refs.items():
        (out / "references" / person).mkdir(parents=True)
        for n, rel in enumerate(rels, start=1):
            write_reference(FACES_DIR / rel, out / "references" / person / f"{n}.jpg")
            shutil.copyfile(
                out / "references" / person / f"{n}.jpg",
                out / "references_cli" / f"{person}__{n}.jpg",
            )


def cast(
    recipe: Recipe, out: Path, rng: random.Random
) -> tuple[dict[str, Identity], list[str], dict]:
    """Who is in the set, who of them is enrolled, and every face box."""
    if recipe is PLATFORM:
        names = PLATFORM_OWNERS + PLATFORM_STRANGERS
        people, boxes = identities(names, out / "face_boxes.json")
        return people, sorted(PLATFORM_OWNERS), boxes
    names = tuple(i.person for i in calib_identities())
    bystanders = tuple(DEV_PHOTOS) if recipe.phone_export else ()
    people, boxes = identities(names + bystanders, out / "face_boxes.json")
    calib = [people[n] for n in names]
    return people, split_owners(calib, rng), boxes


def is_complete(out: Path) -> bool:
    """True when a set of this recipe is fully on disk (truth.json is written last)."""
    truth_file = out / "truth.json"
    if not truth_file.exists():
        return False
    truth = json.loads(truth_file.read_text())
    return truth.get("recipe") == RECIPE and all(
        (out / "photos" / name).exists() for name in truth["photos"]
    )


def build(name: str, out: Path | None = None, force: bool = False) -> dict:
    """Build the named set into out (.bench/<name>/) unless it is complete; return its truth."""
    recipe = RECIPES[name]
    out = out or PROJECT_ROOT / ".bench" / name
    if not force and is_complete(out):
        return json.loads((out / "truth.json").read_text())
    (out / "truth.json").unlink(missing_ok=True)
    for part in ("photos", "references", "references_cli"):
        shutil.rmtree(out / part, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    # The set holds copies of shared face photos: keep git away from it wherever it is built.
    (out / ".gitignore").write_text("*\n")
    (out / "photos").mkdir()
    (out / "references_cli").mkdir()
    rng = random.Random(f"{SEED}-{name}")
    people, owners, boxes = cast(recipe, out, rng)
    # The first photos by name are the references and never appear in a post.
    refs = {p: list(people[p].photos[:REFS_PER_OWNER]) for p in owners}
    posting = {
        p: Identity(p, i.group, i.photos[REFS_PER_OWNER:] if p in refs else i.photos)
        for p, i in people.items()
    }
    posts = plan(recipe, posting, owners, rng)
    ctx = RenderContext(people, set(owners), boxes, sensor_noise((2100, 2100, 3), SEED))
    photos = {post.filename: render(post, ctx, out / "photos") for post in posts}
    if recipe.phone_export:
        photos.update(duplicates(photos, out / "photos", rng))
    write_references(out, people, refs)
    truth = {
        "recipe": RECIPE,
        "seed": SEED,
        "set": name,
        "identities": {
            p: {"group": people[p].group, "owner": p in refs, "references": refs.get(p, [])}
            for p in sorted(people)
        },
        "photos": photos,
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def summary(truth: dict, out: Path) -> str:
    """What the set holds, to check its mix at a glance."""
    photos = truth["photos"].values()
    faces = [f for e in photos for f in e["faces"]]
    owner_faces = [f for f in faces if f["owner"]]
    no_owner = sum(not any(f["owner"] for f in e["faces"]) for e in photos)
    by_group = Counter(f["group"] for f in owner_faces)
    recurring = Counter(f["person"] for f in faces if not f["owner"]).most_common(4)
    ids = truth["identities"].values()
    return (
        f"{len(photos)} photos in {out}: {len(faces)} faces, {len(owner_faces)} of owners\n"
        f"  identities: {len(truth['identities'])}, owners {sum(i['owner'] for i in ids)}\n"
        f"  kinds: {dict(Counter(e['kind'] for e in photos))}\n"
        f"  effects: {dict(Counter(e['effect'] for e in photos))}, "
        f"tilted faces: {sum(bool(f['tilt']) for f in faces)}\n"
        f"  without an owner: {no_owner} ({no_owner / len(photos):.0%})\n"
        f"  owner faces by group: {dict(sorted(by_group.items()))}\n"
        f"  most frequent strangers: {recurring}\n"
        f"  face widths: {min(f['width'] for f in faces)}-{max(f['width'] for f in faces)} px"
    )


def add_sets_argument(parser: argparse.ArgumentParser) -> None:
    """The bench scripts' positional argument: which sets to run."""
    parser.add_argument(
        "sets",
        nargs="*",
        help=f"some of {', '.join(RECIPES)} (default: {', '.join(SETS)})",
    )


def chosen_sets(parser: argparse.ArgumentParser, names: list[str]) -> list[str]:
    """The sets asked for, or every set of `make bench`; an unknown name is a usage error."""
    if unknown := set(names) - set(RECIPES):
        parser.error(f"unknown sets: {', '.join(sorted(unknown))}")
    return names or list(SETS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sets_argument(parser)
    parser.add_argument("--force", action="store_true", help="rebuild even if the set is complete")
    args = parser.parse_args()
    args.sets = chosen_sets(parser, args.sets)
    for name in args.sets:
        started = time.monotonic()
        out = PROJECT_ROOT / ".bench" / name
        truth = build(name, out, args.force)
        print(summary(truth, out))
        print(f"  ready in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
