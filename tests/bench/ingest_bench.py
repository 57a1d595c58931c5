"""Export ingestion throughput, without face work: `iter_export` over a multi-GB Google Takeout.

Run: uv run python tests/bench/ingest_bench.py [--photos 25000] [--videos 4] [--video-mb 150]
Builds once (cached in .bench/ingest/) a Takeout of JPEGs with JSON sidecars in year folders,
album copies and a few large videos, as .zip and as .tar.gz, full size and half size. Each archive
is then read in a fresh process that lists every photo and reads its bytes (no decoding) while a
thread samples its memory. Prints one table; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

PROJECT = Path(__file__).resolve().parents[2]
OUT = PROJECT / ".bench" / "ingest"
LAYOUT_VERSION = 1  # bump when the generated layout changes, so cached archives are rebuilt
ROOT = "Takeout/Google Photos"
ALBUM_EVERY = 25  # one photo in this many is also in an album folder, as Google exports them
ALBUMS = ("Trip to Lisbon", "Summer 2019", "Wedding", "Kids", "Hiking", "Christmas")
SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 960))  # ~30, 48, 75, 116 KB as JPEG


@dataclass(frozen=True)
class Spec:
    """What one archive holds."""

    photos: int
    videos: int
    video_mb: int
    kind: str  # "zip" or "tar.gz"

    @property
    def path(self) -> Path:
        name = f"takeout-v{LAYOUT_VERSION}-{self.photos}p-{self.videos}x{self.video_mb}mb"
        return OUT / f"{name}.{self.kind}"


# --- building ---------------------------------------------------------------------------------


def base_jpegs() -> list[bytes]:
    """Real JPEGs of a few sizes: blurred noise over a gradient, so they compress like photos."""
    from PIL import Image, ImageFilter

    made = []
    for width, height in SIZES:
        noise = [Image.effect_noise((width, height), 40) for _ in range(3)]
        image = Image.merge("RGB", [n.filter(ImageFilter.GaussianBlur(1.5)) for n in noise])
        ramp = Image.linear_gradient("L").resize((width, height))
        image = Image.blend(image, Image.merge("RGB", [ramp, ramp.rotate(90), ramp]), 0.5)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=85)
        made.append(out.getvalue())
    return made


def distinct(jpeg: bytes, number: int) -> bytes:
    """The JPEG with a comment segment after its start marker: still valid, different bytes."""
    comment = f"photo {number:08d} of the ingest benchmark".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def sidecar(title: str, taken: int, number: int) -> bytes:
    return json.dumps(
        {
            "title": title,
            "description": "" if number % 3 else f"Photo number {number}",
            "imageViews": str(number % 97),
            "creationTime": {"timestamp": str(taken + 3600), "formatted": "..."},
            "photoTakenTime": {"timestamp": str(taken), "formatted": "..."},
            "geoData": {"latitude": 38.7223, "longitude": -9.1393, "altitude": 40.5},
            "geoDataExif": {"latitude": 38.7223, "longitude": -9.1393, "altitude": 40.5},
            "people": [{"name": "Ana"}] if number % 5 == 0 else [],
            "url": f"https://photos.google.com/photo/AF1QipBench{number:08d}",
            "googlePhotosOrigin": {"mobileUpload": {"deviceType": "ANDROID_PHONE"}},
        },
        indent=2,
    ).encode()


def members(spec: Spec) -> Iterator[tuple[str, bytes]]:
    """The Takeout, member by member, in the order Google writes it (year folders, then albums)."""
    jpegs = base_jpegs()
    start = int(datetime(2012, 1, 1, tzinfo=UTC).timestamp())
    step = (int(datetime(2024, 12, 31, tzinfo=UTC).timestamp()) - start) // max(spec.photos, 1)
    album_copies: list[tuple[str, bytes, bytes]] = []
    yield "Takeout/archive_browser.html", b"<html><body>Google Photos</body></html>"
    for number in range(spec.photos):
        taken = start + number * step
        when = datetime.fromtimestamp(taken, UTC)
        name = f"IMG_{when:%Y%m%d_%H%M%S}.jpg"
        # Google changed the sidecar naming in late 2024; archives hold both.
        json_name = f"{name}.supplemental-metadata.json" if when.year >= 2023 else f"{name}.json"
        photo = distinct(jpegs[number % len(jpegs)], number)
        meta = sidecar(name, taken, number)
        yield f"{ROOT}/Photos from {when.year}/{name}", photo
        yield f"{ROOT}/Photos from {when.year}/{json_name}", meta
        if number % ALBUM_EVERY == 0:
            album_copies.append((f"{ALBUMS[number % len(ALBUMS)]}/{name}", photo, meta))
    for number in range(spec.videos):
        name = f"PXL_20210{number + 1}01_120000000.mp4"
        video = b"\x00\x00\x00\x18ftypmp42" + os.urandom(spec.video_mb * 2**20)
        yield f"{ROOT}/Photos from 2021/{name}", video
        yield f"{ROOT}/Photos from 2021/{name}.supplemental-metadata.json", sidecar(name, 0, -1)
    for album in ALBUMS:
        yield f"{ROOT}/{album}/metadata.json", json.dumps({"title": album, "date": {}}).encode()
    for path, photo, meta in album_copies:
        yield f"{ROOT}/{path}", photo
        yield f"{ROOT}/{path}.supplemental-metadata.json", meta


def build(spec: Spec) -> tuple[Path, float]:
    """Writes the archive beside its final name and renames it when complete."""
    started = time.perf_counter()
    partial = spec.path.with_name(spec.path.name + ".partial")
    if spec.kind == "zip":
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members(spec):
                archive.writestr(name, data)
    else:
        with tarfile.open(partial, "w:gz") as archive:
            for name, data in members(spec):
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), 1715900000
                archive.addfile(info, io.BytesIO(data))
    os.replace(partial, spec.path)
    return spec.path, time.perf_counter() - started


def build_missing(specs: list[Spec]) -> dict[Path, float]:
    OUT.mkdir(parents=True, exist_ok=True)
    missing = [spec for spec in specs if not spec.path.exists()]
    if not missing:
        return {}
    print(f"building {len(missing)} archive(s) in {OUT} ...", file=sys.stderr)
    with ProcessPoolExecutor(max_workers=min(2, len(missing))) as pool:
        return dict(pool.map(build, missing))


# --- measuring (in a fresh process per archive) -----------------------------------------------


def measure(path: Path) -> dict[str, float]:
    """Lists and reads every photo of the export at `path`; its own memory sampled meanwhile."""
    import psutil

    from service.ingest.exports import iter_export
    from tests.bench.measure import TreeSampler

    sampler = TreeSampler(os.getpid())
    sampler.start()
    baseline = psutil.Process().memory_info().rss
    started, cpu_started = time.perf_counter(), time.process_time()
    first_photo_s = 0.0
    photos = photo_bytes = 0
    for item in iter_export([path]):
        if not photos:
            first_photo_s = time.perf_counter() - started  # the index pass over every part
        photo_bytes += len(item.read())
        photos += 1
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    sampler.done.set()
    sampler.join()
    return {
        "photos": photos,
        "photo_bytes": photo_bytes,
        "wall_s": wall,
        "cpu_s": cpu,
        "first_photo_s": first_photo_s,
        "baseline_rss_mb": baseline / 1e6,
        "peak_rss_mb": sampler.peak_rss / 1e6,
    }


def measured_in_child(path: Path) -> dict[str, float]:
    argv = [sys.executable, __file__, "--measure", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measuring {path.name} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


COLUMNS = (  # heading, width, value of a row
    ("size MB", 8, lambda size, r: f"{size:.0f}"),
    ("photos", 7, lambda size, r: f"{r['photos']:.0f}"),
    ("wall s", 7, lambda size, r: f"{r['wall_s']:.1f}"),
    ("cpu s", 6, lambda size, r: f"{r['cpu_s']:.1f}"),
    ("1st photo s", 11, lambda size, r: f"{r['first_photo_s']:.1f}"),
    ("photos/s", 9, lambda size, r: f"{r['photos'] / r['wall_s']:.0f}"),
    ("archive MB/s", 12, lambda size, r: f"{size / r['wall_s']:.1f}"),
    ("photo MB/s", 10, lambda size, r: f"{r['photo_bytes'] / 1e6 / r['wall_s']:.1f}"),
    ("base RSS MB", 11, lambda size, r: f"{r['baseline_rss_mb']:.0f}"),
    ("peak RSS MB", 11, lambda size, r: f"{r['peak_rss_mb']:.0f}"),
    ("growth MB", 9, lambda size, r: f"{r['peak_rss_mb'] - r['baseline_rss_mb']:.0f}"),
)


def table(rows: list[tuple[Spec, dict[str, float]]]) -> str:
    head = f"{'archive':<34}" + "".join(f" {name:>{width}}" for name, width, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for spec, result in rows:
        size = spec.path.stat().st_size / 1e6
        cells = "".join(f" {value(size, result):>{width}}" for _, width, value in COLUMNS)
        lines.append(f"{spec.path.name:<34}{cells}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=25_000)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--video-mb", type=int, default=150)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    full = (args.photos, args.videos)
    half = (args.photos // 2, args.videos // 2)
    specs = [
        Spec(photos, videos, args.video_mb, kind)
        for photos, videos in (full, half)
        for kind in ("zip", "tar.gz")
    ]
    built = build_missing(specs)
    rows = [(spec, measured_in_child(spec.path)) for spec in specs]
    command = "uv run python tests/bench/ingest_bench.py " + " ".join(sys.argv[1:])
    print(f"$ {command.strip()}")
    print(
        f"iter_export over a Google Takeout, every photo read, no decoding ({os.cpu_count()} cores)"
    )
    print(table(rows))
    print("photos/s and MB/s are per wall second; cpu s is the reading process's own CPU time")
    for path, seconds in built.items():
        print(f"built {path.name} in {seconds:.0f} s")


if __name__ == "__main__":
    main()
