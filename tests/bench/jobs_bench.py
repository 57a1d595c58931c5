"""`make bench`, jobs half: scan throughput with 1, 2 and 4 workers, and a killed worker's scan.

Run: uv run python tests/bench/jobs_bench.py [--scans 8] [--photos 24] [--workers 1 2 4]
         [--resume-photos 60] [--repeats 3] [--seed N]
On PostgreSQL (database `bench_jobs`, created if missing, its schema dropped before each run) and
Redis (db 13, flushed before each run). Each run builds its world through the API (owner alice, a
reference photo, friends who consent and upload exports of distinct real photos), then starts
real `photo-removal worker --workers 1` processes (one engine process each). Prints two tables:
throughput and scaling efficiency per worker count, and the time from a worker's SIGKILL to
another one claiming its scan and to the scan's progress moving past the kill point.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import psutil
import redis
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlmodel import Session, col, select

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from service.app import create_app
from service.config import Settings
from service.db import make_engine
from service.jobs import TICK_SECONDS
from service.tables import Scan
from tests.bench.measure import kill_tree
from tests.bench.service_bench import table
from tests.test_api_journey import owner_token
from tests.test_scan_resume import env_for

PROJECT = Path(__file__).resolve().parents[2]
FACES = PROJECT.parent / "shared" / "faces"
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE = "bench_jobs"
QUEUE_URL = "redis://127.0.0.1:6379/13"
LEASE_S = 5  # the death test: a silent worker is presumed dead after this
THROUGHPUT_LEASE_S = 120  # the default: no oversubscribed heartbeat should lose a scan here
ENDED = ("done", "failed")
T = TypeVar("T")


@dataclass(frozen=True)
class World:
    settings: Settings
    scan_ids: list[int]


@dataclass(frozen=True)
class Throughput:
    workers: int
    wall_s: float
    first_claim_s: float
    scanning_s: float  # from the first claim to the last scan's end: start-up left out
    photos: int
    done: int
    failed: int
    claims: int


@dataclass(frozen=True)
class Death:
    killed_at_photo: int
    claim_s: float
    resume_s: float


def until(ready: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll until `ready` gives something, or raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (found := ready()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return found


def reset_stores() -> None:
    """An empty `bench_jobs` database (created on first use) and an empty queue."""
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": DATABASE}
        ).first()
        if exists is None:
            connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    admin.dispose()
    bench = create_engine(f"{SERVER}/{DATABASE}")
    with bench.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    bench.dispose()
    redis.Redis.from_url(QUEUE_URL).flushdb()


def dev_photos() -> list[Path]:
    files = sorted(p for p in (FACES / "dev").rglob("*") if p.suffix in (".jpg", ".jpeg", ".png"))
    if not files:
        raise SystemExit(f"the real face photos are missing: expected them in {FACES / 'dev'}")
    return files


def write_export(path: Path, friend: int, photos: int, pool: list[Path]) -> None:
    """`photos` dev photos in turn, each made distinct (from every other friend's too) by a
    few bytes after its end, so none is skipped as a copy."""
    with zipfile.ZipFile(path, "w") as z:
        for n in range(photos):
            photo = pool[(friend * photos + n) % len(pool)]
            extra = friend.to_bytes(2, "big") + n.to_bytes(2, "big")
            z.writestr(f"photos/{n:03}{photo.suffix}", photo.read_bytes() + extra)


def build_world(folder: Path, friends: int, photos: int, lease_s: int) -> World:
    """Alice with her reference photo, and `friends` friends each with one export queued."""
    reset_stores()
    settings = Settings(
        data_dir=folder / "data",
        secret_key="bench-" + "k" * 40,
        database_url=f"{SERVER}/{DATABASE}",
        queue_url=QUEUE_URL,
        base_url="http://testserver",
        scan_workers=1,
        scan_lease_seconds=lease_s,
        invitations_per_hour=friends + 10,
    ).prepared()
    pool, scan_ids = dev_photos(), []
    with TestClient(create_app(settings, consume=False)) as client:
        alice = owner_token(client, "alice@example.org", "Alice")
        photo = (FACES / "dev/obama/obama.jpg").read_bytes()
        client.post(
            "/api/v1/reference-photos", headers=alice, files={"file": ("me.jpg", photo)}
        ).raise_for_status()
        for n in range(friends):
            friend = client.post(
                "/api/v1/friends",
                headers=alice,
                json={"name": f"Friend {n}", "email": f"friend{n}@example.org"},
            )
            friend.raise_for_status()
            token = friend.json()["invite_url"].rsplit("/", 1)[1]
            client.post(f"/api/v1/invites/{token}/consent", json={"accept": True})
            path = folder / f"export-{n}.zip"
            write_export(path, n, photos, pool)
            upload = client.post(
                f"/api/v1/invites/{token}/exports", files={"file": (path.name, path.read_bytes())}
            )
            upload.raise_for_status()
            scan_ids.append(int(upload.json()["scan_id"]))
    return World(settings, scan_ids)


class Fleet:
    """Worker processes, each `worker --workers 1`, each with its own log."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings, self.folder = settings, folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        exe = shutil.which("photo-removal")
        if exe is None:
            raise SystemExit("photo-removal is not installed: run this through `uv run`")
        for _ in range(count):
            with (self.folder / f"worker-{len(self.procs)}.log").open("ab") as out:
                self.procs.append(
                    subprocess.Popen(
                        [exe, "worker", "--workers", "1"],
                        env=env_for(self.settings),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )

    def busiest(self, window_s: float = 1.0) -> subprocess.Popen[bytes]:
        """The worker whose process tree used the most CPU over the window: the one scanning."""
        trees: dict[int, list[psutil.Process]] = {}
        for proc in self.procs:
            root = psutil.Process(proc.pid)
            trees[proc.pid] = [root, *root.children(recursive=True)]
            for member in trees[proc.pid]:
                member.cpu_percent(None)
        time.sleep(window_s)
        load = {pid: sum(_cpu(member) for member in tree) for pid, tree in trees.items()}
        return max(self.procs, key=lambda proc: load[proc.pid])

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        kill_tree(psutil.Process(proc.pid))
        proc.wait(10)

    def stop(self) -> None:
        """SIGTERM to all (a scan in hand is given back), SIGKILL to those still up after 20 s."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 20
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(proc)
        self.procs = []

    def tail(self) -> str:
        logs = sorted(self.folder.glob("worker-*.log"))
        return "\n".join(
            f"== {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in logs
        )


def _cpu(proc: psutil.Process) -> float:
    try:
        return proc.cpu_percent(None)
    except psutil.Error:
        return 0.0


class Rows:
    """Reads the world's scan rows, as the workers leave them."""

    def __init__(self, world: World) -> None:
        self.engine = make_engine(world.settings.sqlalchemy_url)
        self.scan_ids = world.scan_ids

    def scans(self) -> list[Scan]:
        with Session(self.engine) as session:
            return list(session.exec(select(Scan).where(col(Scan.id).in_(self.scan_ids))).all())


def measure_throughput(folder: Path, workers: int, scans: int, photos: int) -> Throughput:
    world = build_world(folder, scans, photos, THROUGHPUT_LEASE_S)
    fleet, rows = Fleet(world.settings, folder), Rows(world)
    timeout = 120 + 4.0 * scans * photos
    try:
        started, began = time.monotonic(), datetime.now(UTC)
        fleet.start(workers)
        final = until(
            lambda: _all_ended(rows.scans()), timeout, f"{workers} workers' scans", every=0.25
        )
        wall = time.monotonic() - started
    except TimeoutError as e:
        raise SystemExit(f"{e}\n{fleet.tail()}") from e
    finally:
        fleet.stop()
        rows.engine.dispose()
    first_claim = min(s.started_at for s in final if s.started_at is not None)
    last_end = max(s.finished_at for s in final if s.finished_at is not None)
    return Throughput(
        workers=workers,
        wall_s=wall,
        first_claim_s=(first_claim - began).total_seconds(),
        scanning_s=(last_end - first_claim).total_seconds(),
        photos=sum(s.photos_done for s in final),
        done=sum(s.status == "done" for s in final),
        failed=sum(s.status == "failed" for s in final),
        claims=sum(s.attempts for s in final),
    )


def _all_ended(scans: list[Scan]) -> list[Scan] | None:
    return scans if all(s.status in ENDED for s in scans) else None


def measure_death(folder: Path, photos: int, rng: random.Random) -> Death:
    """Two workers, one scan: SIGKILL the one scanning once it has checkpointed 5 to a third of
    its photos, then a random moment later (to vary the point in the lease)."""
    world = build_world(folder, 1, photos, LEASE_S)
    fleet, rows = Fleet(world.settings, folder), Rows(world)

    def scan() -> Scan:
        return rows.scans()[0]

    try:
        fleet.start(2)
        target = rng.randint(5, max(5, photos // 3))
        until(lambda: s if (s := scan()).photos_done >= target else None, 240, f"photo {target}")
        time.sleep(rng.uniform(0, 2))
        holder = fleet.busiest()
        fleet.kill(holder)
        killed = time.monotonic()
        at_kill = scan()
        if at_kill.status != "running" or at_kill.photos_done >= photos:
            raise SystemExit(f"the scan was not running when its worker was killed: {at_kill}")
        claim_s: float | None = None
        while True:
            now, row = time.monotonic() - killed, scan()
            if claim_s is None and row.attempts > at_kill.attempts:
                claim_s = now
            if row.photos_done > at_kill.photos_done:
                if claim_s is None:  # it went on in the same attempt: the idle worker was killed
                    raise SystemExit(f"killed a worker that did not hold the scan\n{fleet.tail()}")
                return Death(at_kill.photos_done, claim_s, now)
            if now > 120:
                raise TimeoutError("the scan did not resume within 120 s")
            time.sleep(0.1)
    except TimeoutError as e:
        raise SystemExit(f"{e}\n{fleet.tail()}") from e
    finally:
        fleet.stop()
        rows.engine.dispose()


def throughput_report(runs: list[Throughput], scans: int, photos: int, load: str) -> str:
    one = next((r for r in runs if r.workers == 1), None)
    base = (one.photos / one.wall_s, one.photos / one.scanning_s) if one else None

    def efficiency(rate: float, base_rate: float | None, workers: int) -> str:
        return f"{rate / (workers * base_rate):.0%}" if base_rate else "n/a"

    rows = [
        (
            "workers",
            "wall s",
            "first claim s",
            "photos/s",
            "efficiency",
            "photos/s from first claim",
            "its efficiency",
            "scans",
            "claims",
        )
    ]
    for r in runs:
        rate, steady = r.photos / r.wall_s, r.photos / r.scanning_s
        outcome = f"{r.done} done" + (f", {r.failed} failed" if r.failed else "")
        rows.append(
            (
                str(r.workers),
                f"{r.wall_s:.1f}",
                f"{r.first_claim_s:.1f}",
                f"{rate:.2f}",
                efficiency(rate, base and base[0], r.workers),
                f"{steady:.2f}",
                efficiency(steady, base and base[1], r.workers),
                outcome,
                str(r.claims),
            )
        )
    notes = throughput_notes(runs, scans, photos, load)
    return table(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def throughput_notes(runs: list[Throughput], scans: int, photos: int, load: str) -> list[str]:
    cores = os.cpu_count() or 1
    notes = [
        f"{scans} scans of {photos} distinct photos each ({scans * photos} photos), all queued "
        "before the workers start; PostgreSQL + Redis; each worker is `worker --workers 1`, one "
        "engine process. Wall time runs from starting the workers (start-up and model loading "
        "included; `first claim s` shows that part) to the last scan ending.",
        "photos/s = photos scanned / wall s; efficiency = (photos/s at k) / (k x photos/s at 1). "
        "The `from first claim` pair leaves the start-up out (first claim to last end, from the "
        "scan rows). `claims` sums the scans' attempts: one per scan means none was taken twice.",
        f"machine: {cores} cores (os.cpu_count() = {cores}), shared with other work; "
        f"load average {load}. Against other work, more worker processes also win a larger "
        "share of the CPU, which flatters the rows with more workers.",
    ]
    over = [str(r.workers) for r in runs if r.workers > cores]
    if over:
        notes.append(
            f"{', '.join(over)} workers oversubscribe the {cores} cores: engine processes share "
            "cores, so such a row shows what oversubscription costs, not a limit of the job "
            "system's scaling."
        )
    return notes


def death_report(deaths: list[Death], photos: int) -> str:
    def spread(values: list[float]) -> tuple[str, str, str]:
        return (f"{min(values):.1f}", f"{statistics.median(values):.1f}", f"{max(values):.1f}")

    rows = [
        ("after the SIGKILL", "min s", "median s", "max s"),
        ("another worker claims the scan", *spread([d.claim_s for d in deaths])),
        ("`photos_done` moves past the kill point", *spread([d.resume_s for d in deaths])),
    ]
    points = ", ".join(str(d.killed_at_photo) for d in deaths)
    notes = [
        f"{len(deaths)} runs, each a fresh world: one scan of {photos} photos, 2 workers, the "
        f"busier one (by CPU) SIGKILLed after its checkpoint of photo {points}; "
        f"PHOTO_REMOVAL_SCAN_LEASE_SECONDS={LEASE_S}.",
        f"The claim waits for the lease to run out (the heartbeat renews it every {LEASE_S / 3:.1f}"
        f" s, so it ends {2 * LEASE_S / 3:.1f}-{LEASE_S} s after the death) and then for the next "
        f"tick ({TICK_SECONDS} s apart: service/jobs.py `_tick` -> `resend_scans`) to send the "
        f"stalled scan again: at most about {LEASE_S + TICK_SECONDS} s plus the queue's pick-up.",
        "Progress then waits for the new worker to load its engine, skip to the resume point and "
        "reach its first checkpoint (every 2 s).",
    ]
    return table(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=8)
    parser.add_argument("--photos", type=int, default=24, help="photos per scan")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--resume-photos", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=random.randrange(10**6))
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started, load_before = time.monotonic(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as folder:
        runs = []
        for k in args.workers:
            print(f"throughput: {k} workers ...", file=sys.stderr, flush=True)
            work = Path(folder) / f"throughput-{k}"
            work.mkdir()
            runs.append(measure_throughput(work, k, args.scans, args.photos))
        deaths = []
        for n in range(args.repeats):
            print(f"death to resume: run {n + 1} ...", file=sys.stderr, flush=True)
            work = Path(folder) / f"death-{n}"
            work.mkdir()
            deaths.append(measure_death(work, args.resume_photos, rng))
    command = shlex.join(["uv", "run", "python", "tests/bench/jobs_bench.py", *sys.argv[1:]])
    print("Scan throughput through the jobs\n")
    load_after = os.getloadavg()
    load = f"{load_before[1]:.1f} before the bench and {load_after[1]:.1f} after (5 min)"
    print(throughput_report(runs, args.scans, args.photos, load))
    print("\nFrom a worker's death to its scan resuming\n")
    print(death_report(deaths, args.resume_photos))
    print(f"\ncommand: {command}; seed {args.seed}; bench: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
