"""Compose phone-sized canvases: a blurred scene with face photos pasted into it, then encoded."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageEnhance, ImageFilter
from shared_faces import Box, Source, load_upright

pillow_heif.register_heif_opener()

MAX_UPSCALE = 3.0  # beyond this a pasted face is a blur no phone would produce
JPEG_QUALITY = 90  # what phones write
# Stored pixels for each EXIF orientation, so that a viewer applying the tag shows them upright.
STORE_ROTATED = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class Paste:
    """A face photo cut out around some of its faces, to be pasted with their median this wide."""

    source: Source
    faces: tuple[int, ...]  # indexes into source.boxes
    face_width: int

    def crop_box(self) -> tuple[int, int, int, int]:
        """The region around the chosen faces, with room for hair and shoulders."""
        boxes = [self.source.boxes[i] for i in self.faces]
        top, right = min(b[0] for b in boxes), max(b[1] for b in boxes)
        bottom, left = max(b[2] for b in boxes), min(b[3] for b in boxes)
        w = self.source_width()
        return int(left - 0.9 * w), int(top - 0.8 * w), int(right + 0.9 * w), int(bottom + 1.6 * w)

    def source_width(self) -> float:
        """Median width of the chosen faces in the source photo."""
        boxes = [self.source.boxes[i] for i in self.faces]
        return float(np.median([b[1] - b[3] for b in boxes]))

    def scale(self) -> float:
        return min(self.face_width / self.source_width(), MAX_UPSCALE)


def smudge_faces(img: Image.Image, faces: tuple[Box, ...]) -> Image.Image:
    """The photo with its faces blurred away: enlarged eightfold they would be faces again."""
    for top, right, bottom, left in faces:
        pad = (right - left) // 3
        box = (
            max(left - pad, 0),
            max(top - pad, 0),
            min(right + pad, img.width),
            min(bottom + pad, img.height),
        )
        smudged = img.crop(box).filter(ImageFilter.GaussianBlur((right - left) / 5))
        img.paste(smudged, box[:2], feather_mask(smudged.size))
    return img


def background(
    path: Path, size: tuple[int, int], rng: random.Random, faces: tuple[Box, ...] = ()
) -> Image.Image:
    """A plausible out-of-focus scene: a region of a photo, jittered, blurred and enlarged."""
    img = smudge_faces(load_upright(path), faces)
    aspect = size[0] / size[1]
    w = min(img.width, int(img.height * aspect)) * rng.uniform(0.6, 1.0)
    h = w / aspect
    x, y = rng.uniform(0, img.width - w), rng.uniform(0, img.height - h)
    region = img.crop((int(x), int(y), int(x + w), int(y + h)))
    if rng.random() < 0.5:
        region = region.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # Blurring before enlarging is cheap and also hides the small faces in the VOC snapshots.
    region = region.filter(ImageFilter.GaussianBlur(rng.uniform(2.0, 3.5)))
    for enhance in (ImageEnhance.Color, ImageEnhance.Brightness, ImageEnhance.Contrast):
        region = enhance(region).enhance(rng.uniform(0.8, 1.2))
    return region.resize(size, Image.Resampling.BICUBIC)


def feather_mask(size: tuple[int, int]) -> Image.Image:
    """An alpha mask fading out at the edges, so a pasted photo does not look like a sticker."""
    small = Image.new("L", (64, 64), 0)
    small.paste(255, (3, 3, 61, 61))
    return small.filter(ImageFilter.GaussianBlur(2.5)).resize(size, Image.Resampling.BILINEAR)


def cut_out(paste: Paste, factor: float = 1.0) -> Image.Image:
    """The pasted region resized so its faces come out at the planned width (times factor)."""
    img = load_upright(paste.source.path)
    left, top, right, bottom = paste.crop_box()
    # Clipped: the tight 150 px crops would otherwise come with black borders.
    img = img.crop((max(left, 0), max(top, 0), min(right, img.width), min(bottom, img.height)))
    scale = paste.scale() * factor
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    return img.resize(size, resample)


def layout(
    canvas: tuple[int, int], sizes: list[tuple[int, int]], rng: random.Random
) -> list[tuple[int, int]] | None:
    """Non-overlapping top-left corners for every size, or None when they do not fit."""
    placed: list[tuple[int, int, int, int]] = []
    for w, h in sizes:
        if w > canvas[0] or h > canvas[1]:
            return None
        for _ in range(300):
            x, y = rng.randint(0, canvas[0] - w), rng.randint(0, canvas[1] - h)
            rect = (x - 20, y - 20, x + w + 20, y + h + 20)
            if all(
                rect[2] <= p[0] or p[2] <= rect[0] or rect[3] <= p[1] or p[3] <= rect[1]
                for p in placed
            ):
                placed.append(rect)
                break
        else:
            return None
    return [(p[0] + 20, p[1] + 20) for p in placed]


def compose(
    scene: Image.Image, pastes: list[Paste], rng: random.Random
) -> tuple[Image.Image, list[int]]:
    """Paste every cut-out into the scene, shrinking all of them until they fit side by side."""
    factor = 1.0
    while True:
        cutouts = [cut_out(p, factor) for p in pastes]
        corners = layout(scene.size, [c.size for c in cutouts], rng)
        if corners is not None:
            break
        factor *= 0.85
    for cutout, corner in zip(cutouts, corners, strict=True):
        cutout = ImageEnhance.Brightness(cutout).enhance(rng.uniform(0.9, 1.1))
        scene.paste(cutout, corner, feather_mask(cutout.size))
    return scene, [round(p.source_width() * p.scale() * factor) for p in pastes]


def sensor_noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """One field of grain, made once and shifted per canvas: drawing 36 M values costs seconds."""
    return np.random.default_rng(seed).integers(-5, 6, size=shape, dtype=np.int8)


def add_noise(img: Image.Image, noise: np.ndarray, rng: random.Random) -> Image.Image:
    """The canvas with grain over scene and faces alike, as a phone sensor would add it."""
    pixels = np.asarray(img, dtype=np.int16)
    h, w = pixels.shape[:2]
    if h > noise.shape[0] or w > noise.shape[1]:  # a larger canvas repeats the field
        noise = np.tile(noise, (-(-h // noise.shape[0]), -(-w // noise.shape[1]), 1))
    field = np.roll(noise, (rng.randrange(h), rng.randrange(w)), axis=(0, 1))[:h, :w]
    return Image.fromarray(np.clip(pixels + field, 0, 255).astype(np.uint8))


def save(img: Image.Image, path: Path, orientation: int = 1) -> None:
    """Encode by suffix the way a phone or an export would; rotate the pixels under an EXIF tag."""
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        exif = Image.Exif()
        if orientation != 1:
            img = img.transpose(STORE_ROTATED[orientation])
            exif[0x0112] = orientation
        img.save(path, "JPEG", quality=JPEG_QUALITY, exif=exif)
    elif suffix == ".heic":
        # The x265 "ultrafast" preset: the default one takes 40 s for a grainy 12 MP frame.
        img.save(path, "HEIF", quality=70, enc_params={"preset": "ultrafast"})
    elif suffix == ".webp":
        img.save(path, "WEBP", quality=85)
    elif suffix == ".png":
        img.save(path, "PNG", compress_level=3)
    else:
        raise ValueError(f"no encoder for {path.name}")
