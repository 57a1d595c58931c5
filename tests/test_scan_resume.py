"""A worker killed in the middle of a scan: another one finishes it, once, with no duplicates."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.app import create_app
from service.config import Settings
from service.db import make_engine
from service.tables import Match, Scan
from tests.conftest import QUEUES, make_settings
from tests.test_api_journey import owner_token

PHOTOS = 14


def slow_export(faces_dir: Path, folder: Path) -> Path:
    """Distinct photos (one byte apart), every other one showing the owner."""
    obama = (faces_dir / "dev/obama/obama-720p.jpg").read_bytes()
    strangers = (faces_dir / "dev-bbt/_group_unlabeled/bbt1.jpg").read_bytes()
    path = folder / "export.zip"
    with zipfile.ZipFile(path, "w") as z:
        for n in range(PHOTOS):
            z.writestr(f"photos/{n:02}.jpg", (obama if n % 2 == 0 else strangers) + bytes([n]))
    return path


@dataclass(frozen=True)
class Shared:
    """Alice (enrolled with Obama's face) and Dana, who consented and uploaded an export."""

    alice: dict[str, str]
    friend_id: int
    token: str
    scan_id: int


def dana_shares(client: TestClient, faces_dir: Path, export: bytes) -> Shared:
    """Build that world through the API; the export's scan is queued, not run."""
    alice = owner_token(client, "alice@example.org", "Alice")
    photo = (faces_dir / "dev/obama/obama.jpg").read_bytes()
    client.post("/api/v1/reference-photos", headers=alice, files={"file": ("me.jpg", photo)})
    friend = client.post(
        "/api/v1/friends", headers=alice, json={"name": "Dana", "email": "dana@example.org"}
    ).json()
    token = friend["invite_url"].rsplit("/", 1)[1]
    client.post(f"/api/v1/invites/{token}/consent", json={"accept": True})
    scan_id = client.post(
        f"/api/v1/invites/{token}/exports", files={"file": ("export.zip", export)}
    ).json()["scan_id"]
    return Shared(alice, friend["id"], token, scan_id)


def env_for(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PHOTO_REMOVAL_DATA_DIR": str(settings.data_dir),
            "PHOTO_REMOVAL_SECRET_KEY": settings.secret_key,
            "PHOTO_REMOVAL_DATABASE_URL": settings.database_url,
            "PHOTO_REMOVAL_QUEUE_URL": settings.queue_url,
            "PHOTO_REMOVAL_SCAN_LEASE_SECONDS": str(settings.scan_lease_seconds),
        }
    )
    return env


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("photo-removal")
    assert exe
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [exe, "worker", "--workers", "1"],
            env=env_for(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def scan_row(settings: Settings, scan_id: int) -> Scan:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            scan = session.get(Scan, scan_id)
            assert scan is not None
            return scan
    finally:
        engine.dispose()


def wait_until(settings: Settings, scan_id: int, ready, timeout: float) -> Scan:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scan = scan_row(settings, scan_id)
        if ready(scan):
            return scan
        time.sleep(0.2)
    raise AssertionError(f"scan never got there: {scan}")


@pytest.mark.parametrize("queue", QUEUES)
def test_it_resumes_a_scan_whose_worker_was_killed(
    faces_dir: Path, tmp_path: Path, queue: str
) -> None:
    settings = make_settings(tmp_path, queue=queue, scan_lease_seconds=3).prepared()
    with TestClient(create_app(settings, consume=False)) as client:
        export = slow_export(faces_dir, tmp_path).read_bytes()
        scan_id = dana_shares(client, faces_dir, export).scan_id

    log = tmp_path / "workers.log"
    first = start_worker(settings, log)
    try:
        halfway = wait_until(settings, scan_id, lambda s: 0 < s.photos_done < PHOTOS, 90)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert halfway.status == "running"

    time.sleep(settings.scan_lease_seconds + 0.5)  # the dead worker's lease runs out
    second = start_worker(settings, log)
    try:
        done = wait_until(settings, scan_id, lambda s: s.status in ("done", "failed"), 120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    assert done.status == "done", log.read_text()[-3000:]
    assert done.photos_done == done.photos_total == PHOTOS
    assert done.attempts == 2

    engine = make_engine(settings.sqlalchemy_url)
    with Session(engine) as session:
        photos = sorted(session.exec(select(Match.photo).where(Match.scan_id == scan_id)).all())
    engine.dispose()
    assert photos == [f"photos/{n:02}.jpg" for n in range(0, PHOTOS, 2)]  # each once
    assert done.matches == PHOTOS // 2
    assert list(settings.quarantine_dir.iterdir()) == []
