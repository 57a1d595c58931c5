"""Chaos: real `serve` and `worker` processes, SIGKILLed at random points of a scan.

What must hold afterwards, whatever the timing: the scan ends with exactly the matches an
uninterrupted scan finds, each once; no engine process outlives its worker; no row is left
running or queued; the quarantine is empty; and the processes still alive stop cleanly on SIGTERM.
Bounded: every wait has a deadline. `CHAOS_SEED` replays a run.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.app import create_app
from service.config import Settings
from service.db import make_engine
from service.scan import run_scan
from service.states import MailStatus, ScanStatus
from service.tables import Match, OutgoingMail, Scan
from tests.conftest import make_settings
from tests.smtp_server import SmtpServer
from tests.test_api_journey import owner_token
from tests.test_circles import Family, _circle_of_two, _enroll, _id, _invite_tess
from tests.test_scan_resume import dana_shares, env_for

# Enough photos that three kills land mid-scan on a fast machine too: progress is recorded every
# 2 s (scan.CHECKPOINT_SECONDS), ~24 of these photos on a 2-core machine of 2026, and each kill
# waits for a checkpoint. With 60, the scan sometimes ended before the third kill.
PHOTOS = 180
KILLS = 3
LEASE_S = 3
SEED = int(os.environ.get("CHAOS_SEED", random.randrange(10**6)))


def export(faces_dir: Path, folder: Path) -> tuple[Path, list[str]]:
    """PHOTOS distinct small photos (one byte apart); every third shows the owner."""
    owner = (faces_dir / "dev/obama/obama-480p.jpg").read_bytes()
    strangers = [(faces_dir / f"dev-bbt/_group_unlabeled/bbt{n}.jpg").read_bytes() for n in (2, 3)]
    path, shows_owner = folder / "export.zip", []
    with zipfile.ZipFile(path, "w") as z:
        for n in range(PHOTOS):
            name = f"photos/{n:03}.jpg"
            data = owner if n % 3 == 0 else strangers[n % 2]
            z.writestr(name, data + n.to_bytes(2, "big"))
            if n % 3 == 0:
                shows_owner.append(name)
    return path, shows_owner


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Fleet:
    """The service's processes, started from the console script as an operator would."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings, self.log = settings, log
        self.procs: list[subprocess.Popen[bytes]] = []
        self.engines: set[int] = set()  # every engine process seen, to check none survives

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        exe = shutil.which("photo-removal")
        assert exe
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                [exe, *args], env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def env(self) -> dict[str, str]:
        env = env_for(self.settings)
        s = self.settings
        env["PHOTO_REMOVAL_REMINDER_AFTER"] = s.reminder_after
        if s.smtp_host:
            env["PHOTO_REMOVAL_SMTP_HOST"], env["PHOTO_REMOVAL_SMTP_PORT"] = (
                s.smtp_host,
                str(s.smtp_port),
            )
            env["PHOTO_REMOVAL_SMTP_STARTTLS"] = "false"
        return env

    def worker(self) -> subprocess.Popen[bytes]:
        return self.start("worker", "--workers", "2")

    def serve(self) -> str:
        port = free_port()
        proc = self.start("serve", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        until(lambda: _answers(url) or proc.poll() is not None, 60, "serve to answer")
        assert proc.poll() is None, self.tail()
        return url

    def children(self, proc: subprocess.Popen[bytes]) -> set[int]:
        try:
            found = {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            return set()
        self.engines |= found
        return found

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        self.children(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.procs.remove(proc)

    def stop(self) -> list[int | None]:
        """SIGTERM to all: each must exit by itself, cleanly."""
        for proc in self.procs:
            self.children(proc)
            proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(60))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(None)
        self.procs = []
        return codes

    def survivors(self) -> list[int]:
        """Engine processes still alive, waiting a little for their watchdogs."""
        deadline = time.monotonic() + 15
        while True:
            alive = [pid for pid in self.engines if _alive(pid)]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    def note(self, line: str) -> None:
        with self.log.open("a") as out:
            out.write(f"{datetime.now()} test: {line}\n")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def until(ready: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Rows:
    def __init__(self, settings: Settings) -> None:
        self.engine = make_engine(settings.sqlalchemy_url)

    def scan(self, scan_id: int) -> Scan:
        with Session(self.engine) as session:
            return session.get_one(Scan, scan_id)

    def matches(self, scan_id: int) -> list[str]:
        with Session(self.engine) as session:
            return sorted(session.exec(select(Match.photo).where(Match.scan_id == scan_id)).all())

    def mail_count(self) -> int:
        with Session(self.engine) as session:
            return len(session.exec(select(OutgoingMail.id)).all())

    def unsettled(self) -> list[tuple[str, int | None]]:
        with Session(self.engine) as session:
            scans = session.exec(
                select(Scan.id).where(Scan.status.in_([ScanStatus.queued, ScanStatus.running]))  # type: ignore[attr-defined]
            ).all()
            mails = session.exec(
                select(OutgoingMail.id).where(OutgoingMail.status != MailStatus.sent)
            ).all()
        return [("scan", i) for i in scans] + [("mail", i) for i in mails]


@pytest.fixture
def scan_world(
    faces_dir: Path, tmp_path: Path, request
) -> Iterator[tuple[Settings, int, list[str]]]:  # type: ignore[no-untyped-def]
    database, queue = request.param
    for needed, variable in ((database, "DATABASE"), (queue, "QUEUE")):
        if needed != "sqlite" and not os.environ.get(f"PHOTO_REMOVAL_TEST_{variable}_URL"):
            pytest.skip(f"PHOTO_REMOVAL_TEST_{variable}_URL is not set")
    settings = make_settings(
        tmp_path, database=database, queue=queue, scan_lease_seconds=LEASE_S
    ).prepared()
    with TestClient(create_app(settings, consume=False)) as client:
        path, expected = export(faces_dir, tmp_path)
        scan_id = dana_shares(client, faces_dir, path.read_bytes()).scan_id
    yield settings, scan_id, expected


SCALE_OUT = [("postgresql", "redis"), ("sqlite", "sqlite")]


@pytest.mark.parametrize("scan_world", SCALE_OUT, indirect=True, ids=["pg-redis", "sqlite"])
def test_a_scan_survives_its_workers_being_killed(
    scan_world: tuple[Settings, int, list[str]], tmp_path: Path
) -> None:
    settings, scan_id, expected = scan_world
    rng, rows = random.Random(SEED), Rows(settings)
    try:
        _kill_workers_during_a_scan(settings, scan_id, expected, rng, rows, tmp_path)
    finally:
        rows.engine.dispose()


def _kill_workers_during_a_scan(
    settings: Settings,
    scan_id: int,
    expected: list[str],
    rng: random.Random,
    rows: Rows,
    tmp_path: Path,
) -> None:
    fleet = Fleet(settings, tmp_path / "fleet.log")
    embedded = settings.queue_url == ""  # SQLite queue: the `serve` processes consume it
    try:
        if embedded:
            consumers = [fleet.start("serve", "--port", str(free_port())) for _ in range(2)]
        else:
            fleet.serve()
            consumers = [fleet.worker(), fleet.worker()]
        for kill in range(KILLS):
            done = rows.scan(scan_id).photos_done
            target = rng.randint(done + 1, done + 8)
            until(lambda t=target: rows.scan(scan_id).photos_done >= t, 150, f"photo {target}")
            holder = next(
                (p for p in consumers if fleet.children(p)), rng.choice(consumers)
            )  # the one with engine processes holds the scan
            fleet.kill(holder)
            fleet.note(f"killed {holder.pid} at photo {rows.scan(scan_id).photos_done}")
            consumers.remove(holder)
            replacement = (
                fleet.start("serve", "--port", str(free_port())) if embedded else fleet.worker()
            )
            consumers.append(replacement)
            assert rows.scan(scan_id).status == ScanStatus.running, (kill, fleet.tail())
        until(lambda: rows.scan(scan_id).status in ("done", "failed"), 240, "the scan to end")
        final = rows.scan(scan_id)
        codes = fleet.stop()
    finally:
        fleet.stop()
    assert final.status == ScanStatus.done, (SEED, final.error, fleet.tail())
    assert final.attempts == KILLS + 1, SEED
    assert rows.matches(scan_id) == expected, SEED  # each once: no duplicate, none lost
    # uvicorn ends by re-raising the SIGTERM it handled (after "Finished server process")
    assert set(codes) <= {0, -signal.SIGTERM}, (codes, fleet.tail())
    assert fleet.log.read_text().count("Finished server process") == codes.count(-signal.SIGTERM)
    assert fleet.survivors() == [], fleet.tail()
    assert rows.unsettled() == []
    assert list(settings.quarantine_dir.iterdir()) == []
    assert len(list(settings.outbox_dir.glob("*.eml"))) == rows.mail_count()  # each mail once


def test_three_consumers_send_each_reminder_once(faces_dir: Path, tmp_path: Path) -> None:
    # Every consumer runs Huey's clock; the reminders must still go out once each, counted
    # where they arrive: a real SMTP server.
    database = "postgresql" if os.environ.get("PHOTO_REMOVAL_TEST_DATABASE_URL") else "sqlite"
    queue = "redis" if os.environ.get("PHOTO_REMOVAL_TEST_QUEUE_URL") else "sqlite"
    smtp = SmtpServer().start()
    settings = make_settings(
        tmp_path,
        database=database,
        queue=queue,
        reminder_after="2s,4s,6s",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
    ).prepared()
    with TestClient(create_app(settings, consume=False)) as client:
        path = tmp_path / "export.zip"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("me.jpg", (faces_dir / "dev/obama/obama-480p.jpg").read_bytes())
        shared = dana_shares(client, faces_dir, path.read_bytes())
        alice, friend_id, scan_id = shared.alice, shared.friend_id, shared.scan_id
        jobs = client.app.state.services.jobs  # type: ignore[attr-defined]
        run_scan(jobs.context, scan_id)  # here, so that only the reminders are left to the fleet
        review = f"/api/v1/friends/{friend_id}/matches/review"
        client.post(review, headers=alice, json={"decision": "confirmed"})
        sent = client.post(f"/api/v1/friends/{friend_id}/checklist/send", headers=alice)
        assert sent.status_code == 202

    fleet = Fleet(settings, tmp_path / "fleet.log")
    rows = Rows(settings)
    try:
        for _ in range(3):
            fleet.start("worker", "--workers", "1")
        until(lambda: len(_reminders(smtp)) >= 3, 90, "three reminders")
        time.sleep(6)  # a second sending of any of them would come in now
        codes = fleet.stop()
        assert len(_reminders(smtp)) == 3, fleet.tail()
        kinds = sorted(str(m["Subject"]) for m in smtp.messages)
        # alice's address confirmation, the invitation, "Dana agreed to help you", "1 photo
        # from Dana may show you", the checklist, 3 reminders
        assert len(kinds) == rows.mail_count() == 8, kinds
        assert rows.unsettled() == []
        assert codes == [0, 0, 0], fleet.tail()
    finally:
        fleet.stop()
        rows.engine.dispose()
        smtp.stop()


def _reminders(smtp: SmtpServer) -> list[object]:
    return [m for m in smtp.messages if "reminder" in str(m["Subject"]).lower()]


@pytest.mark.parametrize("scan_world", [("sqlite", "sqlite")], indirect=True, ids=["sqlite"])
def test_a_worker_stopped_mid_scan_gives_it_back_and_leaves_nothing_running(
    scan_world: tuple[Settings, int, list[str]], tmp_path: Path
) -> None:
    settings, scan_id, expected = scan_world
    rows, fleet = Rows(settings), Fleet(settings, tmp_path / "fleet.log")
    try:
        worker = fleet.worker()
        until(lambda: rows.scan(scan_id).photos_done > 0, 120, "the first checkpoint")
        fleet.children(worker)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, fleet.tail()
        fleet.procs.remove(worker)
        given_back = rows.scan(scan_id)
        assert (given_back.status, given_back.lease_until) == (ScanStatus.queued, None)
        assert fleet.survivors() == []

        fleet.worker()  # takes it at once: no lease to wait out
        until(lambda: rows.scan(scan_id).status == ScanStatus.done, 180, "the scan to end")
        assert fleet.stop() == [0]
        assert rows.scan(scan_id).attempts == 2
        assert rows.matches(scan_id) == expected
    finally:
        fleet.stop()
        rows.engine.dispose()


# ---- a family's scan: one upload, two members ----

FAMILY_PHOTOS = 12
# In turn: alice's face (Obama), ben's (Biden), both, a stranger; and whose faces each shows.
FAMILY_KINDS = [
    ("dev/obama/obama-480p.jpg", ("alice",)),
    ("dev/biden/biden2.jpg", ("ben",)),
    ("dev/_multi/obama_and_biden.jpg", ("alice", "ben")),
    ("dev-bbt/_group_unlabeled/bbt2.jpg", ()),
]


def family_export(faces_dir: Path, folder: Path) -> tuple[Path, dict[str, list[str]]]:
    """FAMILY_PHOTOS distinct photos (one byte apart); returns the photos of each member."""
    path = folder / "family.zip"
    shows: dict[str, list[str]] = {"alice": [], "ben": []}
    with zipfile.ZipFile(path, "w") as z:
        for n in range(FAMILY_PHOTOS):
            photo, whose = FAMILY_KINDS[n % len(FAMILY_KINDS)]
            name = f"photos/{n:02}.jpg"
            z.writestr(name, (faces_dir / photo).read_bytes() + n.to_bytes(2, "big"))
            for member in whose:
                shows[member].append(name)
    return path, shows


def _tess_shares_with_both(client: TestClient, export: bytes) -> tuple[int, dict[str, int]]:
    """Alice and ben in one circle, tess helping both, her export queued through ben's link;
    returns the scan and each member's owner id."""
    family = Family(
        client,
        owner_token(client, "alice@example.org", "Alice"),
        owner_token(client, "ben@example.org", "Ben"),
        {},
    )
    _circle_of_two(family)
    _enroll(family, family.alice, "dev/obama/obama.jpg")
    _enroll(family, family.ben, "dev/biden/biden.jpg")
    tokens = [_invite_tess(family, who) for who in (family.alice, family.ben)]
    ids = {"alice": _id(family, family.alice), "ben": _id(family, family.ben)}
    consent = {"accept": True, "owners": list(ids.values())}
    assert client.post(f"/api/v1/invites/{tokens[0]}/consent", json=consent).is_success
    upload = client.post(f"/api/v1/invites/{tokens[1]}/exports", files={"file": ("e.zip", export)})
    assert upload.status_code == 202, upload.text
    return upload.json()["scan_id"], ids


def _matches_of(rows: Rows, scan_id: int, owner_id: int) -> list[str]:
    with Session(rows.engine) as session:
        query = select(Match.photo).where(Match.scan_id == scan_id, Match.owner_id == owner_id)
        return sorted(session.exec(query).all())


def test_a_family_scan_survives_its_worker_being_killed(faces_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, scan_lease_seconds=LEASE_S).prepared()
    with TestClient(create_app(settings, consume=False)) as client:
        path, shows = family_export(faces_dir, tmp_path)
        scan_id, ids = _tess_shares_with_both(client, path.read_bytes())
    rows, fleet = Rows(settings), Fleet(settings, tmp_path / "fleet.log")
    try:
        worker = fleet.worker()
        until(lambda: rows.scan(scan_id).photos_done > 0, 150, "the first checkpoint")
        fleet.kill(worker)
        fleet.note(f"killed {worker.pid} at photo {rows.scan(scan_id).photos_done}")
        assert rows.scan(scan_id).status == ScanStatus.running, fleet.tail()
        fleet.worker()  # takes the scan over once its lease runs out
        until(lambda: rows.scan(scan_id).status in ("done", "failed"), 240, "the scan to end")
        until(lambda: not rows.unsettled(), 60, "each member's mail about the scan to go")
        codes = fleet.stop()
        final = rows.scan(scan_id)
        assert (final.status, final.attempts) == (ScanStatus.done, 2), (final.error, fleet.tail())
        # Each member has exactly the matches an unkilled scan gives: none twice, none lost.
        for member, owner_id in ids.items():
            assert _matches_of(rows, scan_id, owner_id) == shows[member], member
        assert codes == [0], fleet.tail()
        assert fleet.survivors() == [], fleet.tail()
        assert list(settings.quarantine_dir.iterdir()) == []
        assert len(list(settings.outbox_dir.glob("*.eml"))) == rows.mail_count()  # each once
    finally:
        fleet.stop()
        rows.engine.dispose()
