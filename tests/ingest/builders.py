"""Small real files for ingest tests: tiny JPEGs that differ, and exports written as ZIP or TAR."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from service.ingest.items import PhotoItem

Files = dict[str, bytes]


def jpeg(seed: int = 0) -> bytes:
    """A distinct 8x8 JPEG per seed, so a test can tell which photo it was given."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256)).save(out, "JPEG")
    return out.getvalue()


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def meta_json(value: Any) -> bytes:
    """JSON written the way Meta writes it: each UTF-8 byte of text as its own \\u00XX escape."""
    text = json.dumps(value, ensure_ascii=False)
    return json.dumps(json.loads(text.encode().decode("latin-1")), ensure_ascii=True).encode()


def write_zip(path: Path, files: Files) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def write_tar(path: Path, files: Files, compression: str = "gz") -> Path:
    with tarfile.open(path, f"w:{compression}") as archive:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def under(root: str, files: Files) -> Files:
    """The same files inside an extra top folder, as when a friend re-zips an extracted export."""
    return {f"{root}/{name}": data for name, data in files.items()}


def utc(year: int, month: int, day: int, *clock: int) -> datetime:
    hour, minute, second, micro = (*clock, 0, 0, 0, 0)[:4]
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def unix(year: int, month: int, day: int, *clock: int) -> int:
    return int(utc(year, month, day, *clock).timestamp())


def read_items(items: Iterable[PhotoItem]) -> dict[str, tuple[PhotoItem, bytes]]:
    """Every item by key with its bytes, each read before the next is asked for (TAR streams)."""
    found: dict[str, tuple[PhotoItem, bytes]] = {}
    for item in items:
        assert item.key not in found, f"{item.key} given twice"
        found[item.key] = (item, item.read())
    return found
