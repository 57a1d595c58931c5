"""Reading photos: every format, every EXIF orientation, reduced-scale JPEG, hostile files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.faces.decision import COPY_BITS, PRINT_BYTES
from service.faces.images import UnreadablePhoto, decode_photo, photo_print

ORIENTATION_TO_STORED = {
    # EXIF orientation: how to turn the upright picture into the pixels a phone stores.
    1: lambda im: im,
    2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_90),
    7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
}


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


@pytest.fixture(scope="module")
def obama(faces_dir: Path) -> Image.Image:
    return Image.open(faces_dir / "dev/obama/obama-240p.jpg").convert("RGB")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_it_shows_every_exif_orientation_upright(obama: Image.Image, orientation: int) -> None:
    stored = ORIENTATION_TO_STORED[orientation](obama)
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = decode_photo(encoded(stored, "PNG", exif=exif.tobytes()))
    assert photo.original_size == obama.size
    assert np.array_equal(photo.rgb, np.asarray(obama))


@pytest.mark.parametrize(
    ("fmt", "mode", "params"),
    [
        ("JPEG", "RGB", {"quality": 92}),
        ("PNG", "RGBA", {}),
        ("PNG", "P", {}),
        ("WEBP", "RGB", {"quality": 90}),
        ("HEIF", "RGB", {"quality": 90}),
        ("GIF", "P", {}),
        ("BMP", "RGB", {}),
        ("TIFF", "RGB", {"compression": "tiff_lzw"}),
    ],
)
def test_it_finds_the_face_in_every_photo_format(
    engine, gallery, thresholds, obama: Image.Image, fmt: str, mode: str, params: dict
) -> None:
    image = obama.convert(mode) if mode != "P" else obama.quantize(256)
    _, faces = engine.scan_bytes(encoded(image, fmt, **params))
    assert len(faces) == 1
    [distances] = gallery.distances(np.array([faces[0].encoding]))
    assert gallery.names[int(distances.argmin())] == "obama"
    assert distances.min() <= thresholds.possible


def test_it_reads_a_gif_first_frame(obama: Image.Image) -> None:
    frames = [obama, Image.new("RGB", obama.size, "red")]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    rgb = decode_photo(data).rgb
    assert rgb[:, :, 0].mean() < 200  # the first frame is the photo, not the red one


def test_it_scales_16_bit_png_instead_of_clipping_it_white(obama: Image.Image) -> None:
    grey = np.asarray(obama.convert("L"), dtype=np.uint16) * 257
    data = encoded(Image.fromarray(grey), "PNG")  # uint16 arrays become 16-bit PNGs
    rgb = decode_photo(data).rgb
    assert rgb.shape == (*grey.shape, 3)
    assert abs(int(rgb[:, :, 0].mean()) - int(np.asarray(obama.convert("L")).mean())) <= 2


def test_it_flattens_transparency_onto_white() -> None:
    clear = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    rgb = decode_photo(encoded(clear, "PNG")).rgb
    assert rgb.min() == 255


def test_it_decodes_a_large_jpeg_at_reduced_scale() -> None:
    big = Image.new("RGB", (4000, 3000), (120, 90, 60))
    photo = decode_photo(encoded(big, "JPEG"), max_side=1600)
    assert photo.rgb.shape[:2] == (1500, 2000)  # 1/2 keeps the long side >= 1600
    assert photo.scale == 0.5
    assert photo.original_size == (4000, 3000)


def test_it_keeps_full_scale_when_the_reduced_one_would_be_too_small() -> None:
    photo = decode_photo(encoded(Image.new("RGB", (3000, 1000)), "JPEG"), max_side=1600)
    assert photo.rgb.shape[:2] == (1000, 3000)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb's calling card."""
    data = encoded(Image.new("L", (1, 1)), "PNG")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        data[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]
    )


def test_it_refuses_a_decompression_bomb_before_decoding() -> None:
    with pytest.raises(UnreadablePhoto, match="too large"):
        decode_photo(png_claiming(30000, 30000))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a readable image"),
        (b"this is a text file, not a photo", "not a readable image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "damaged|incomplete|not a readable"),
    ],
)
def test_it_reports_files_that_are_not_photos(data: bytes, message: str) -> None:
    with pytest.raises(UnreadablePhoto, match=message):
        decode_photo(data)


def test_it_reports_a_truncated_jpeg(obama: Image.Image) -> None:
    data = encoded(obama, "JPEG")
    with pytest.raises(UnreadablePhoto, match="incomplete"):
        decode_photo(data[: len(data) // 2])


def test_a_copy_differs_from_its_photo_in_a_few_bits_of_its_fingerprint(faces_dir: Path) -> None:
    # A copy saved back from a chat: half the size, re-compressed hard. Another photo of the same
    # person is not a copy.
    original = Image.open(faces_dir / "dev/kit_harington/john1.jpeg").convert("RGB")
    half = original.resize((original.width // 2, original.height // 2))
    saved = encoded(half, "JPEG", quality=40)
    copy = Image.open(io.BytesIO(saved)).convert("RGB")
    other = Image.open(faces_dir / "dev/kit_harington/john2.jpeg").convert("RGB")

    def bits(a: Image.Image, b: Image.Image) -> int:
        x = np.frombuffer(photo_print(np.asarray(a)), np.uint8)
        return int(np.unpackbits(x ^ np.frombuffer(photo_print(np.asarray(b)), np.uint8)).sum())

    assert len(photo_print(np.asarray(original))) == PRINT_BYTES
    assert bits(original, copy) <= COPY_BITS < bits(original, other)
