"""Small JPEGs kept for matched photos and reference faces; nothing larger is ever stored."""

from __future__ import annotations

import io

from PIL import Image

from service.faces.images import DecodedPhoto

PHOTO_THUMBNAIL_SIDE = 640  # large enough for the owner to judge who it is
FACE_CROP_SIDE = 200


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
    side = max(right - left, bottom - top) * 1.6
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
