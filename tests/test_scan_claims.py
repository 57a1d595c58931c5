"""Claims, leases and the sweep: one worker per scan, whatever the timing, on SQLite and PostgreSQL.

Every write a worker makes to its scan is a conditional UPDATE whose rowcount must be 1; these
tests race real threads against one database and look at the rows and files afterwards.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from service import scan as scans
from service.app import create_app
from service.config import Settings
from service.jobs import Jobs, _claim_period, reap_quarantine
from service.scan import MAX_ATTEMPTS, ScanContext, run_scan
from service.states import ScanStatus
from service.tables import Match, Periodic, Scan, Source, utcnow
from tests.conftest import make_settings
from tests.test_scan_resume import dana_shares, slow_export

RACERS = 8


@dataclasses.dataclass
class World:
    settings: Settings
    jobs: Jobs
    scan_id: int

    @property
    def ctx(self) -> ScanContext:
        return self.jobs.context

    def scan(self) -> Scan:
        with Session(self.ctx.db) as session:
            return session.get_one(Scan, self.scan_id)

    def upload(self) -> Path:
        with Session(self.ctx.db) as session:
            path = session.exec(select(Source.upload_path)).one()
        assert path is not None
        return Path(path)

    def set(self, **values: Any) -> None:
        with Session(self.ctx.db) as session:
            session.execute(update(Scan).where(col(Scan.id) == self.scan_id).values(**values))
            session.commit()


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, faces_dir: Path, tmp_path: Path) -> Iterator[World]:  # type: ignore[no-untyped-def]
    if request.param == "postgresql" and not os.environ.get("PHOTO_REMOVAL_TEST_DATABASE_URL"):
        pytest.skip("PHOTO_REMOVAL_TEST_DATABASE_URL is not set")
    settings = make_settings(tmp_path, database=request.param).prepared()
    with TestClient(create_app(settings, consume=False)) as client:
        export = slow_export(faces_dir, tmp_path).read_bytes()
        scan_id = dana_shares(client, faces_dir, export).scan_id
        yield World(settings, client.app.state.services.jobs, scan_id)  # type: ignore[attr-defined]


def race(n: int, fn: Callable[[], Any]) -> list[Any]:
    """Run `fn` in n threads released at the same instant."""
    start = threading.Barrier(n)

    def one() -> Any:
        start.wait()
        return fn()

    with ThreadPoolExecutor(n) as pool:
        return [f.result() for f in [pool.submit(one) for _ in range(n)]]


def test_one_of_many_racing_workers_claims_the_scan(world: World) -> None:
    claims = race(RACERS, lambda: scans._claim(world.ctx, world.scan_id))
    assert sum(c is not None for c in claims) == 1
    assert world.scan().attempts == 1 and world.scan().status == ScanStatus.running


def test_a_worker_that_lost_its_lease_can_neither_record_nor_finish(world: World) -> None:
    ctx = dataclasses.replace(world.ctx, lease=timedelta(seconds=0))
    first = scans._claim(ctx, world.scan_id)
    assert first is not None
    second = scans._claim(world.ctx, world.scan_id)  # the first lease ran out at once
    assert second is not None and second[0].attempts == 2
    with pytest.raises(scans._LeaseLost):
        scans._checkpoint(world.ctx, first[0], [], 5)
    scans._finish(world.ctx, first[0], ScanStatus.failed, "the old worker gives up")
    row = world.scan()
    assert (row.status, row.photos_done, row.error) == (ScanStatus.running, 0, None)
    assert world.upload().exists()  # the successor is reading it


def test_the_heartbeat_keeps_the_lease_while_a_photo_is_slow(world: World) -> None:
    ctx = dataclasses.replace(world.ctx, lease=timedelta(seconds=1.5))
    claimed = scans._claim(ctx, world.scan_id)
    assert claimed is not None
    with scans._Heartbeat(ctx, claimed[0]) as heartbeat:
        time.sleep(2.5)  # one slow photo, longer than the lease
        assert scans._claim(world.ctx, world.scan_id) is None  # still held
        heartbeat.check()
    world.set(attempts=7)  # someone else's claim now
    with scans._Heartbeat(ctx, claimed[0]) as heartbeat:
        time.sleep(1.0)
        with pytest.raises(scans._LeaseLost):
            heartbeat.check()


def test_a_source_that_keeps_killing_its_worker_fails_in_the_end(world: World) -> None:
    world.set(status=ScanStatus.running, attempts=MAX_ATTEMPTS, lease_until=utcnow())
    upload = world.upload()
    assert run_scan(world.ctx, world.scan_id) is False
    row = world.scan()
    assert row.status == ScanStatus.failed and "stopped the scanner" in (row.error or "")
    assert not upload.exists()


class _StopsAfter(threading.Event):
    """A stop signal that arrives after the scan has looked at this many photos (it asks once a
    photo): the same place on a fast machine and a slow one, unlike a timer."""

    def __init__(self, photos: int) -> None:
        super().__init__()
        self.left = photos

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0 or super().is_set()


def test_a_stopping_worker_gives_the_scan_back_and_it_ends_as_if_uninterrupted(
    world: World,
) -> None:
    ctx = dataclasses.replace(world.ctx, stopping=_StopsAfter(photos=4))  # SIGTERM, 4 photos in
    assert run_scan(ctx, world.scan_id) is True
    row = world.scan()
    assert row.status == ScanStatus.queued and row.lease_until is None
    assert 0 < row.photos_done < row.photos_total  # type: ignore[operator]
    assert world.upload().exists()

    assert run_scan(world.ctx, world.scan_id) is False
    row = world.scan()
    assert (row.status, row.photos_done, row.attempts) == (ScanStatus.done, 14, 2)
    with Session(world.ctx.db) as session:
        photos = sorted(session.exec(select(Match.photo)).all())
    assert photos == [f"photos/{n:02}.jpg" for n in range(0, 14, 2)]


def test_the_sweep_sends_lost_scans_again_and_deletes_orphaned_uploads(world: World) -> None:
    huey = world.jobs.huey
    huey.flush()  # the job sent at upload is lost
    world.set(created_at=utcnow() - scans.QUEUED_GRACE * 2)
    quarantine = world.settings.quarantine_dir
    orphan, arriving = quarantine / "upload-orphan", quarantine / "upload-arriving"
    orphan.write_bytes(b"left by a killed upload")
    arriving.write_bytes(b"still coming in")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    os.utime(world.upload(), (old, old))  # old, but its source still waits for its scan

    world.jobs.sweep()
    world.jobs.sweep()  # a second sweep sees the job pending and does not send it twice
    assert [t.args for t in huey.pending() if t.name == "scan"] == [(world.scan_id,)]
    assert not orphan.exists()
    assert arriving.exists() and world.upload().exists()
    assert reap_quarantine(world.ctx.db, quarantine) == []


def test_periodic_work_runs_once_per_period_however_many_consumers(world: World) -> None:
    runs = race(RACERS, lambda: _claim_period(world.ctx.db, "tick", timedelta(seconds=30)))
    assert runs.count(True) == 1
    with Session(world.ctx.db) as session:
        assert session.get_one(Periodic, "tick").next_run_at > utcnow() + timedelta(seconds=20)
