"""`photo-removal scan`: the JSON contract and exit codes of API.md, via the console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image


def photo_removal(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("photo-removal")
    assert exe, "the photo-removal console script is not installed"
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def references(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("references")
    for person, photo in [("obama", "dev/obama/obama.jpg"), ("biden", "dev/biden/biden.jpg")]:
        (root / person).mkdir()
        shutil.copy(faces_dir / photo, root / person)
    (root / "biden" / "dogs.jpg").write_bytes(
        (faces_dir / "dev/_no_human_faces/dogs.jpg").read_bytes()
    )
    return root


@pytest.fixture(scope="module")
def export(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    (root / "2016/summer").mkdir(parents=True)
    shutil.copy(faces_dir / "dev/obama/obama-480p.jpg", root / "2016/summer/IMG_1.jpg")
    shutil.copy(faces_dir / "dev/obama/obama-480p.jpg", root / "2016/IMG_1 copy.jpg")
    Image.open(faces_dir / "dev/_multi/obama_and_biden.jpg").save(root / "2016/both.webp")
    shutil.copy(faces_dir / "dev/_no_human_faces/dogs.jpg", root / "dogs.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 half a photo")
    (root / "notes.txt").write_text("not a photo, not counted")
    return root


EXPECTED = {
    ("2016/IMG_1 copy.jpg", "obama"),
    ("2016/both.webp", "biden"),
    ("2016/both.webp", "obama"),
    ("2016/summer/IMG_1.jpg", "obama"),
}


def check(document: dict) -> None:
    assert {(m["photo"], m["person"]) for m in document["matches"]} == EXPECTED
    assert document["photos_seen"] == 5
    assert document["photos_scanned"] == 4
    assert document["faces_found"] >= 4
    assert {e["photo"] for e in document["errors"]} >= {"broken.jpg"}
    for match in document["matches"]:
        assert match["band"] in ("strong", "possible")
        assert 0 <= match["distance"] <= 0.6
        top, right, bottom, left = match["box"]
        assert top < bottom and left < right


def test_it_scans_a_folder_and_prints_one_json_document(references: Path, export: Path) -> None:
    result = photo_removal(
        "scan", "--reference", references, "--photos", export, "--json", "--workers", "2"
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    check(document)
    # The reference without a face is reported and skipped, not fatal.
    assert any("dogs.jpg" in e["photo"] and "no face" in e["error"] for e in document["errors"])
    assert set(document) >= {
        "photos_seen",
        "photos_scanned",
        "faces_found",
        "elapsed_s",
        "matches",
        "errors",
    }


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_it_reads_an_archive_in_place(
    references: Path, export: Path, tmp_path: Path, suffix: str
) -> None:
    archive = tmp_path / f"export{suffix}"
    files = sorted(p for p in export.rglob("*") if p.is_file())
    if suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as z:
            for f in files:
                z.write(f, f.relative_to(export).as_posix())
    else:
        with tarfile.open(archive, "w:gz") as t:
            for f in files:
                t.add(f, f.relative_to(export).as_posix())
    result = photo_removal(
        "scan", "--reference", references, "--photos", archive, "--json", "--workers", "1"
    )
    assert result.returncode == 0, result.stderr
    check(json.loads(result.stdout))
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]  # nothing extracted


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--photos", "."],  # no --reference
        ["scan", "--reference", "/nonexistent", "--photos", "."],
        ["scan", "--reference", ".", "--photos", ".", "--workers", "0"],
    ],
)
def test_it_exits_2_on_bad_arguments(args: list[str]) -> None:
    result = photo_removal(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip()


def test_it_exits_2_when_no_reference_shows_one_face(faces_dir: Path, tmp_path: Path) -> None:
    shutil.copy(faces_dir / "dev/_no_human_faces/dogs.jpg", tmp_path / "dogs.jpg")
    result = photo_removal("scan", "--reference", tmp_path, "--photos", tmp_path, "--json")
    assert result.returncode == 2
    assert "no usable reference" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_it_opens_archives_inside_a_folder_and_reports_a_refused_one(
    references: Path, faces_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "downloads"
    root.mkdir()
    with zipfile.ZipFile(root / "takeout-001.zip", "w") as z:
        z.write(faces_dir / "dev/obama/obama-480p.jpg", "Takeout/Photos/IMG_1.jpg")
    with zipfile.ZipFile(root / "takeout-002.zip", "w") as z:
        z.writestr("Takeout/ok.jpg", (faces_dir / "dev/_no_human_faces/dogs.jpg").read_bytes())
        z.writestr("../../evil.jpg", b"\xff\xd8\xff")
    shutil.copy(faces_dir / "dev/_no_human_faces/dogs.jpg", root / "dogs.jpg")
    result = photo_removal(
        "scan", "--reference", references, "--photos", root, "--json", "--workers", "1"
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {(m["photo"], m["person"]) for m in document["matches"]} == {
        ("takeout-001.zip/Takeout/Photos/IMG_1.jpg", "obama")
    }
    assert (document["photos_seen"], document["photos_scanned"]) == (3, 2)
    refusal = [e["error"] for e in document["errors"] if e["photo"] == "takeout-002.zip"]
    assert len(refusal) == 1 and "outside" in refusal[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "dogs.jpg",
        "downloads",
        "takeout-001.zip",
        "takeout-002.zip",
    ]  # nothing extracted
