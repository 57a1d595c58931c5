"""Safe photo decoding: every format a phone or export holds, upright, at the scale needed."""

from __future__ import annotations

import io
import math
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF, the iPhone's default format
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a hard dependency; keep PNG/JPEG working
    pass

# Refuse decompression bombs ourselves, from the header, before any pixel is decoded.
# 100 megapixels is above any phone photo (the largest phone sensors give 50-200 MP photos, but
# exports store them downscaled); Pillow's own limit is switched off so our message is the one seen.
DEFAULT_MAX_PIXELS = 120_000_000
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False


class UnreadablePhoto(Exception):
    """A photo that cannot be scanned; the message is shown to people, so it is plain words."""


@dataclass(frozen=True)
class DecodedPhoto:
    """An upright RGB photo, possibly decoded at reduced scale.

    `scale` maps decoded pixels to the original upright photo: original = decoded / scale.
    """

    rgb: np.ndarray
    scale: float
    original_size: tuple[int, int]  # upright (width, height)


def decode_photo(
    data: bytes, *, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> DecodedPhoto:
    """Decode `data` upright, reduced (JPEG only) so that its long side stays >= `max_side`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd EXIF or ICC chunks are not our business
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise UnreadablePhoto(
                    f"the photo is too large to read safely ({width}x{height} pixels)"
                )
            full_width, full_height = _upright_size(image)
            if max_side is not None and image.format == "JPEG":
                _draft(image, max_side)
            image.load()
            upright = ImageOps.exif_transpose(image) or image
            rgb = _to_rgb(upright)
    except UnreadablePhoto:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise UnreadablePhoto("not a readable image") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, MemoryError) as e:
        raise UnreadablePhoto(_describe(e)) from None
    scale = rgb.shape[1] / full_width if full_width else 1.0
    return DecodedPhoto(rgb=rgb, scale=scale, original_size=(full_width, full_height))


def _upright_size(image: Image.Image) -> tuple[int, int]:
    orientation = image.getexif().get(0x0112, 1)
    width, height = image.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _draft(image: Image.Image, max_side: int) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the long side stays >= max_side."""
    width, height = image.size
    factor = max_side / max(width, height)
    if factor >= 1:
        return
    # draft() keeps the smallest DCT scale whose size is >= the requested size in both axes,
    # so ask for the real proportional size, not a square box.
    image.draft("RGB", (math.ceil(width * factor), math.ceil(height * factor)))


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: keep the top 8 bits instead of clipping everything above 255 to white.
        wide = np.asarray(image, dtype=np.uint32)
        top = int(wide.max()) if wide.size else 0
        shift = max(0, top.bit_length() - 8)
        grey = (wide >> shift).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels often hide black; flatten onto white as every viewer shows them.
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def _describe(error: BaseException) -> str:
    text = str(error).lower()
    if "truncated" in text or isinstance(error, EOFError):
        return "the photo file is incomplete (truncated)"
    if isinstance(error, MemoryError):
        return "the photo is too large to read"
    return "the photo file is damaged and cannot be read"


def photo_print(rgb: np.ndarray) -> bytes:
    """A photo's fingerprint, 32 bytes: the difference hash of its upright pixels in grey (is
    each point of a 17x16 grid brighter than its left neighbour). A copy re-saved at another
    size or quality differs in a few of the 256 bits (0-7 on the bench's chat copies and
    duplicated files), another photo in 16 or more."""
    small = Image.fromarray(rgb).convert("L").resize((17, 16), Image.Resampling.BILINEAR)
    g = np.asarray(small, np.int16)
    return np.packbits(g[:, 1:] > g[:, :-1]).tobytes()
