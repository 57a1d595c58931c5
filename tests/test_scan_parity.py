"""The service's scan and `photo-removal scan` decide alike.

Both read the same rule (models/thresholds.json), but each has its own way of keeping a source's
faces until the decision: the command keeps them in memory, the service seals them in batches.
A face that one proposes and the other drops is a bug: so it was with the blurred photos that
query expansion finds past `possible`, which the service's batches did not keep (the reach itself
is tested in test_scan_faces.py: no pair of real photos here lands in it).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter
from sqlmodel import Session, select

from service import scan_command
from service.app import create_app
from service.scan import run_scan
from service.tables import Match
from tests.conftest import make_settings
from tests.test_scan_resume import dana_shares

OWNER = ("obama-720p.jpg", "obama1.jpg", "obama2.jpg", "obama3.jpg")
STRANGERS = ("bbt1.jpg", "bbt2.jpg", "bbt3.jpg")


def _photos(faces_dir: Path, folder: Path) -> Path:
    """The owner's photos, group photos of strangers, and a blurred small copy of the owner's
    photo, 0.62 from the reference when this was written: past `possible`, proposed by neither."""
    folder.mkdir()
    for name in OWNER:
        shutil.copy(faces_dir / "dev/obama" / name, folder / name)
    for name in STRANGERS:
        shutil.copy(faces_dir / "dev-bbt/_group_unlabeled" / name, folder / name)
    blurred = Image.open(faces_dir / "dev/obama/obama-720p.jpg").convert("RGB")
    blurred.thumbnail((400, 400))
    blurred.filter(ImageFilter.GaussianBlur(2.5)).save(folder / "blurred.jpg", quality=70)
    return folder


def _decided_by_the_command(faces_dir: Path, photos: Path, tmp_path: Path) -> dict:
    references = tmp_path / "references" / "alice"
    references.mkdir(parents=True)
    shutil.copy(faces_dir / "dev/obama/obama.jpg", references / "obama.jpg")
    report = scan_command.run_scan(references.parent, [photos], workers=1)
    assert not report.errors
    return {(m["photo"], tuple(m["box"])): (m["band"], m["distance"]) for m in report.matches}


def _decided_by_the_service(faces_dir: Path, photos: Path, tmp_path: Path) -> dict:
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as z:
        for path in sorted(photos.iterdir()):
            z.write(path, path.name)
    settings = make_settings(tmp_path / "service").prepared()
    with TestClient(create_app(settings, consume=False)) as client:
        scan_id = dana_shares(client, faces_dir, export.read_bytes()).scan_id
        ctx = client.app.state.services.jobs.context  # type: ignore[attr-defined]
        assert run_scan(ctx, scan_id) is False  # finished, not given back
        with Session(ctx.db) as session:
            rows = session.exec(select(Match).where(Match.scan_id == scan_id)).all()
    return {(m.photo, tuple(m.box)): (str(m.band), m.distance) for m in rows}


def test_the_service_proposes_what_the_scan_command_proposes(
    faces_dir: Path, tmp_path: Path
) -> None:
    photos = _photos(faces_dir, tmp_path / "photos")
    command = _decided_by_the_command(faces_dir, photos, tmp_path)
    service = _decided_by_the_service(faces_dir, photos, tmp_path)

    assert {photo for photo, _ in command} >= set(OWNER), "every photo of the owner is found"
    assert not {photo for photo, _ in command} & set(STRANGERS), "no stranger is proposed"
    assert service.keys() == command.keys(), (service, command)
    for face, (band, distance) in command.items():
        assert service[face][0] == band
        assert service[face][1] == pytest.approx(distance, abs=1e-3)
