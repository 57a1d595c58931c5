"""Google Takeout: pairing each photo with its sidecar under every naming Google has used."""

from __future__ import annotations

from pathlib import Path

from service.ingest.exports import iter_export
from tests.ingest.builders import as_json, jpeg, read_items, utc, write_tar, write_zip

YEAR = "Takeout/Google Photos/Photos from 2019"
ALBUM = "Takeout/Google Photos/Trip to Lisbon"


def sidecar(title: str, taken: int, description: str = "", **extra: object) -> bytes:
    return as_json(
        {
            "title": title,
            "description": description,
            "creationTime": {"timestamp": str(taken + 3600), "formatted": "..."},
            "photoTakenTime": {"timestamp": str(taken), "formatted": "..."},
            "url": f"https://photos.google.com/photo/AF1Qip{taken}",
            **extra,
        }
    )


# Google shortens long names in the archive, so a sidecar's title (the uploaded name) can differ
# from both file names: only the naming rules pair these.
LONG = "Screenshot_20190111-181110_Some Very Long App Na.jpg"  # cut from a longer uploaded name
UPLOADED = "Screenshot_20190111-181110_Some Very Long App Name Here.jpg"


def takeout() -> dict[str, bytes]:
    return {
        f"{YEAR}/IMG_1.jpg": jpeg(1),
        f"{YEAR}/IMG_1.jpg.json": sidecar("IMG_1.jpg", 1547248270, "Old naming"),
        f"{YEAR}/PXL_2.jpg": jpeg(2),
        f"{YEAR}/PXL_2.jpg.supplemental-metadata.json": sidecar(
            "PXL_2.jpg", 1547248271, "New naming"
        ),
        f"{YEAR}/IMG_3(1).jpg": jpeg(3),
        f"{YEAR}/IMG_3.jpg(1).json": sidecar("IMG_3.jpg", 1547248272, "Old counter"),
        f"{YEAR}/IMG_3.jpg": jpeg(33),
        f"{YEAR}/IMG_3.jpg.json": sidecar("IMG_3.jpg", 1547248233, "Not the duplicate"),
        f"{YEAR}/IMG_4(2).jpg": jpeg(4),
        f"{YEAR}/IMG_4.jpg.supplemental-metadata(2).json": sidecar(
            "IMG_4.jpg", 1547248273, "New counter"
        ),
        f"{YEAR}/IMG_5-edited.jpg": jpeg(5),
        f"{YEAR}/IMG_5.jpg": jpeg(55),
        f"{YEAR}/IMG_5.jpg.supplemental-meta.json": sidecar("IMG_5.jpg", 1547248274, "Edited copy"),
        f"{YEAR}/{LONG}": jpeg(6),
        f"{YEAR}/{LONG[:46]}.json": sidecar(UPLOADED, 1547248275, "Old naming cut"),
        f"{YEAR}/20190111_181110_long_name.jpg": jpeg(7),
        f"{YEAR}/20190111_181110_long_name.jpg.supplemental-met.json": sidecar(
            "20190111_181110_long_name (uploaded).jpg", 1547248276, "New naming cut"
        ),
        f"{YEAR}/Rock & roll.jpg": jpeg(8),
        f"{YEAR}/Rock _ roll.jpg.json": sidecar("Rock & roll.jpg", 1547248277, "By title"),
        f"{YEAR}/no-sidecar.jpg": jpeg(9),
        f"{YEAR}/binned.jpg": jpeg(10),
        f"{YEAR}/binned.jpg.json": sidecar("binned.jpg", 1547248278, trashed=True),
        f"{ALBUM}/metadata.json": as_json(
            {"title": "Trip to Lisbon", "description": "", "date": {"timestamp": "1672477816"}}
        ),
        f"{ALBUM}/IMG_1.jpg": jpeg(1),
        f"{ALBUM}/IMG_1.jpg.json": sidecar("IMG_1.jpg", 1547248270, "Old naming"),
        f"{ALBUM}/beach.jpg": jpeg(11),
        f"{ALBUM}/beach.jpg.supplemental-metadata.json": sidecar("beach.jpg", 1672477000),
        f"{YEAR}/PXL_2.mp4": b"\x00\x00\x00\x18ftypmp42",
        "Takeout/archive_browser.html": b"<html>",
    }


def test_it_pairs_photos_with_sidecars_under_every_naming(tmp_path: Path) -> None:
    found = read_items(
        iter_export([write_zip(tmp_path / "takeout-20240516T230250Z-001.zip", takeout())])
    )
    captions = {key.rsplit("/", 1)[1]: item.caption for key, (item, _) in found.items()}
    assert captions == {
        "IMG_1.jpg": "Old naming",
        "PXL_2.jpg": "New naming",
        "IMG_3(1).jpg": "Old counter",
        "IMG_3.jpg": "Not the duplicate",
        "IMG_4(2).jpg": "New counter",
        "IMG_5-edited.jpg": "Edited copy",
        "IMG_5.jpg": "Edited copy",
        LONG: "Old naming cut",
        "20190111_181110_long_name.jpg": "New naming cut",
        "Rock & roll.jpg": "By title",
        "no-sidecar.jpg": None,
        "beach.jpg": None,
    }
    first = found[f"{YEAR}/IMG_1.jpg"][0]
    assert first.platform == "google_photos"
    assert first.taken_at == utc(2019, 1, 11, 23, 11, 10)
    assert first.post_url == "https://photos.google.com/photo/AF1Qip1547248270"
    assert first.album == "Trip to Lisbon"  # given once, from its year folder, with its album
    assert found[f"{ALBUM}/beach.jpg"][0].album == "Trip to Lisbon"
    assert found[f"{YEAR}/PXL_2.jpg"][0].album is None
    assert all(item.post_key is None for item, _ in found.values())  # each photo by itself


def test_it_joins_sidecars_and_photos_split_across_parts(tmp_path: Path) -> None:
    files = takeout()
    part_1 = {name: data for name, data in files.items() if name.endswith(".json")}
    part_2 = {name: data for name, data in files.items() if not name.endswith(".json")}
    parts = [
        write_tar(tmp_path / "takeout-001.tgz", part_2),
        write_zip(tmp_path / "takeout-002.zip", part_1),
    ]
    found = read_items(iter_export(parts))
    assert found[f"{YEAR}/IMG_4(2).jpg"][0].caption == "New counter"
    assert found[f"{YEAR}/IMG_1.jpg"][0].album == "Trip to Lisbon"


def test_it_reads_takeout_names_cut_by_bytes(tmp_path: Path) -> None:
    name = "Ünïcödé_fötös_ßüß_ëxpört_wïth_äccénts_1234.jpg"  # 46 characters, more bytes
    cut = name.encode()[:46].decode(errors="ignore")
    files = {
        f"{YEAR}/{name}": jpeg(1),
        f"{YEAR}/{cut}.json": sidecar("uploaded.jpg", 1547248270, "Cut by bytes"),
    }
    found = read_items(iter_export([write_zip(tmp_path / "takeout.zip", files)]))
    assert found[f"{YEAR}/{name}"][0].caption == "Cut by bytes"
