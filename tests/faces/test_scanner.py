"""The scanner: worker pool, byte-identical photos scanned once, no thumbnail of bystanders."""

from __future__ import annotations

from pathlib import Path

from service.faces.decision import DecisionRule
from service.faces.matching import Gallery, Thresholds
from service.faces.scanner import Scanner
from service.ingest.items import PhotoItem


def item(key: str, data: bytes) -> PhotoItem:
    return PhotoItem(key=key, read=lambda: data)


def photos(faces_dir: Path) -> list[PhotoItem]:
    obama = (faces_dir / "dev/obama/obama-480p.jpg").read_bytes()
    return [
        item("a/obama.jpg", obama),
        item("b/copy-of-obama.jpg", obama),
        item("strangers.jpg", (faces_dir / "dev-bbt/_group_unlabeled/bbt4.jpg").read_bytes()),
        item("broken.jpg", b"\xff\xd8\xff\xe0 not really"),
    ]


def scan(gallery: Gallery, thresholds: Thresholds, items: list[PhotoItem], workers: int) -> dict:
    with Scanner(gallery, thresholds, workers=workers) as scanner:
        results = {i.key: r for i, r in scanner.scan(items)}
        return {"results": results, "distinct": scanner.photos_distinct}


def test_it_scans_byte_identical_photos_once_and_reports_both(
    gallery: Gallery, thresholds: Thresholds, faces_dir: Path
) -> None:
    outcome = scan(gallery, thresholds, photos(faces_dir), workers=1)
    results = outcome["results"]
    assert outcome["distinct"] == 3
    assert results["a/obama.jpg"] is results["b/copy-of-obama.jpg"]
    [face] = results["a/obama.jpg"].near(thresholds.possible)
    assert gallery.names[int(face.distances.argmin())] == "obama"


def test_it_reports_a_broken_photo_and_goes_on(
    gallery: Gallery, thresholds: Thresholds, faces_dir: Path
) -> None:
    results = scan(gallery, thresholds, photos(faces_dir), workers=1)["results"]
    assert results["broken.jpg"].error
    assert results["strangers.jpg"].error is None


def test_it_makes_no_thumbnail_of_a_photo_of_strangers(
    gallery: Gallery, thresholds: Thresholds, faces_dir: Path
) -> None:
    with Scanner(gallery, thresholds, workers=1, thumbnails=True) as scanner:
        results = {i.key: r for i, r in scanner.scan(photos(faces_dir))}
    strangers = results["strangers.jpg"]
    assert strangers.faces_found >= 5
    # A worker pictures a face the rule may still propose: within its reach (`expand_reach`).
    # These six strangers are all farther (the nearest 0.686 from Obama's reference); with
    # SFace, a stranger often sits at 0.65-0.70.
    assert strangers.near(DecisionRule.load().reach) == []
    assert strangers.thumbnail is None  # nothing of their photo leaves the worker but numbers
    assert results["a/obama.jpg"].thumbnail is not None


def test_it_gives_the_same_results_with_a_pool_of_workers(
    gallery: Gallery, thresholds: Thresholds, faces_dir: Path
) -> None:
    alone = scan(gallery, thresholds, photos(faces_dir), workers=1)["results"]
    pooled = scan(gallery, thresholds, photos(faces_dir), workers=2)["results"]
    assert pooled.keys() == alone.keys()
    for key, result in alone.items():
        assert pooled[key].faces_found == result.faces_found
        assert [f.box for f in pooled[key].faces] == [f.box for f in result.faces]
        assert bool(pooled[key].error) == bool(result.error)


def test_it_yields_results_in_the_order_photos_came(
    gallery: Gallery, thresholds: Thresholds, faces_dir: Path
) -> None:
    # The web service records "the first N photos are done" to resume a killed scan.
    big = (faces_dir / "dev/_dlib_bald_guys/bald_guys.jpg").read_bytes()
    small = (faces_dir / "dev/obama/obama-240p.jpg").read_bytes()
    items = [item(f"{n:02}.jpg", big if n % 3 == 0 else small + bytes([n])) for n in range(9)]
    with Scanner(gallery, thresholds, workers=2) as scanner:
        keys = [i.key for i, _ in scanner.scan(items)]
    assert keys == [i.key for i in items]
