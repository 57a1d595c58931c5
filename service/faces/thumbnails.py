"""Small JPEGs kept for matched photos and reference faces; nothing larger is ever stored.

The whole photo (downscaled) is the friend's, for their checklist. The owner is shown their own
face: the region around it, every other face in it blurred beyond recognition.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

from service.faces.images import DecodedPhoto

Box = tuple[int, int, int, int]  # top, right, bottom, left

PHOTO_THUMBNAIL_SIDE = 640  # large enough for the friend to know which photo of theirs it is
FACE_CROP_SIDE = 200
CROP_MARGIN = 1.6  # a face crop's side, in face widths
OWNER_VIEW_SIDE = 320
# The owner's view spans this many face sizes: hair, shoulders and a little of the scene, enough
# to recognise the moment, seldom a whole neighbour.
OWNER_VIEW_SPAN = 2.75
# Another face is covered over its box widened this much (hair, ears, the rest of the head),
# and over its box widened OTHER_FACE_CORE even where it overlaps the owner's face.
OTHER_FACE_COVER = 1.5
OTHER_FACE_CORE = 1.0


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


def photo_thumbnail(photo: DecodedPhoto) -> tuple[bytes, float]:
    """The whole photo downscaled, and its scale relative to the original upright photo."""
    image = Image.fromarray(photo.rgb)
    image.thumbnail((PHOTO_THUMBNAIL_SIDE, PHOTO_THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return _jpeg(image), image.width / photo.original_size[0]


def face_crop(photo: DecodedPhoto, box: tuple[int, int, int, int]) -> bytes:
    """A square crop around a face (box in original pixels), with some margin around it."""
    top, right, bottom, left = (round(v * photo.scale) for v in box)
    side = max(right - left, bottom - top) * CROP_MARGIN
    cx, cy = (left + right) / 2, (top + bottom) / 2
    height, width = photo.rgb.shape[:2]
    crop = Image.fromarray(photo.rgb).crop(
        (
            max(0, round(cx - side / 2)),
            max(0, round(cy - side / 2)),
            min(width, round(cx + side / 2)),
            min(height, round(cy + side / 2)),
        )
    )
    crop.thumbnail((FACE_CROP_SIDE, FACE_CROP_SIDE), Image.Resampling.LANCZOS)
    return _jpeg(crop)


@dataclass(frozen=True)
class OwnerView:
    """What the owner is shown of a friend's photo: the region around their face, JPEG."""

    jpeg: bytes
    box: Box  # the owner's face within the view, in its pixels


def owner_view(photo: DecodedPhoto, box: Box, others: Sequence[Box]) -> OwnerView:
    """The region around the face at `box`; every face of `others` in it is smeared to a few
    colours, so neither a person nor a detector can tell it (boxes in original pixels)."""
    top, right, bottom, left = (v * photo.scale for v in box)
    size = max(right - left, bottom - top, 1.0)
    half = size * OWNER_VIEW_SPAN / 2
    cx, cy = (left + right) / 2, (top + bottom) / 2 + size * 0.25  # a little more below: shoulders
    height, width = photo.rgb.shape[:2]
    x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
    x1, y1 = min(width, round(cx + half)), min(height, round(cy + half))
    region = Image.fromarray(photo.rgb[y0:y1, x0:x1])
    own = (left - x0, top - y0, right - x0, bottom - y0)
    for other in others:
        _cover(region, [v * photo.scale for v in other], (x0, y0), own)
    region.thumbnail((OWNER_VIEW_SIDE, OWNER_VIEW_SIDE), Image.Resampling.LANCZOS)
    k = region.width / max(1, x1 - x0)
    return OwnerView(
        _jpeg(region),
        (round(own[1] * k), round(own[2] * k), round(own[3] * k), round(own[0] * k)),
    )


def _cover(
    region: Image.Image,
    box: list[float],
    origin: tuple[int, int],
    own: tuple[float, float, float, float],
) -> None:
    """Smear the head around `box` (decoded pixels) inside `region`: its face always, the rest
    of the head where it does not reach into the owner's face."""
    top, right, bottom, left = box
    size = max(right - left, bottom - top)
    cx, cy = (left + right) / 2 - origin[0], (top + bottom) / 2 - origin[1]
    head = _around(cx, cy, size * OTHER_FACE_COVER / 2)
    area = (
        max(0, round(head[0])),
        max(0, round(head[1])),
        min(region.width, round(head[2])),
        min(region.height, round(head[3])),
    )
    if area[0] >= area[2] or area[1] >= area[3]:
        return  # the face is outside the view
    mask = Image.new("L", region.size, 0)
    draw = ImageDraw.Draw(mask)
    draw.ellipse(head, fill=255)
    draw.rectangle(own, fill=0)  # the owner's face stays sharp where a neighbour's hair is...
    draw.ellipse(_around(cx, cy, size * OTHER_FACE_CORE / 2), fill=255)  # ...but not their face
    patch = region.crop(area)
    # Down to 3x3 colours and back: no eye, nose or mouth survives, only the light of the scene.
    smear = patch.resize((3, 3), Image.Resampling.BOX).resize(patch.size, Image.Resampling.BICUBIC)
    smear = smear.filter(ImageFilter.GaussianBlur(max(2.0, size / 12)))
    region.paste(smear, area[:2], mask.crop(area))


def _around(cx: float, cy: float, half: float) -> tuple[float, float, float, float]:
    return (cx - half, cy - half, cx + half, cy + half)
