"""`make bench`, service half: a 1 GB export uploaded through the API and scanned by the job system.

Run: uv run python tests/bench/service_bench.py [--workers N] [--size-gb 1.1]
Starts `photo-removal serve` (and, when Redis answers on 127.0.0.1:6379, a separate
`photo-removal worker` on a Redis queue; otherwise the embedded SQLite queue inside serve), then
measures upload throughput, scan throughput through the jobs against the bare `scan` command on the
same archive, and the peak memory of the server and the worker process trees. Prints one table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from email import message_from_bytes, policy
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import build_set
from tests.bench.measure import Measured, TreeSampler, kill_tree, run_measured

PROJECT = Path(__file__).resolve().parents[2]
OUT = PROJECT / ".bench" / "service"
PASSWORD = "benchmark password"


def build_export(photos: Path, path: Path, size_bytes: int) -> tuple[int, int]:
    """Two copies of the photo set (one byte apart, so both are scanned) plus video files, as
    real exports carry them, up to `size_bytes`. Returns (photos, bytes)."""
    if path.exists() and path.stat().st_size >= size_bytes:
        with zipfile.ZipFile(path) as z:
            return sum(1 for n in z.namelist() if not n.endswith(".mp4")), path.stat().st_size
    path.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in photos.iterdir() if p.is_file())
    count = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for copy in ("2019", "2019_backup"):
            for f in files:
                extra = b"" if copy == "2019" else b"\0"
                z.writestr(f"photos/{copy}/{f.name}", f.read_bytes() + extra)
                count += 1
        n = 0
        while path.stat().st_size < size_bytes:
            z.writestr(f"videos/VID_{n:04}.mp4", os.urandom(64 * 2**20))
            n += 1
    return count, path.stat().st_size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return True
    except OSError:
        return False


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server at {base} did not start")


def confirmed_owner(
    c: httpx.Client, outbox: Path, email: str = "owner@example.org"
) -> dict[str, str]:
    """An owner who signed up and opened the link of the confirmation mail (in the outbox, as
    from an inbox; an unconfirmed owner may invite no one): her API headers."""
    body = {"email": email, "password": PASSWORD, "name": "Owner"}
    if c.post("/api/v1/auth/register", json=body).status_code == 201:
        deadline = time.monotonic() + 30
        while not (link := _confirmation_link(outbox, email)):
            if time.monotonic() > deadline:
                raise SystemExit(f"no confirmation mail to {email} in {outbox}")
            time.sleep(0.2)
        c.post("/api/v1/auth/confirm", json={"token": link.rsplit("/", 1)[1]}).raise_for_status()
    token = c.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def _confirmation_link(outbox: Path, email: str) -> str | None:
    for path in outbox.glob("*.eml"):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        body = mail.get_body(("plain",))
        text = body.get_content() if body is not None else ""  # type: ignore[attr-defined]
        found = re.search(r"https?://\S+/confirm/\S+", text)
        if mail["To"] == email and found:
            return found.group(0)
    return None


def prepare_friend(base: str, references: Path, outbox: Path) -> tuple[dict[str, str], str]:
    """An owner with her reference photos and a friend who accepted: the friend's token."""
    with httpx.Client(base_url=base, timeout=120) as c:
        auth = confirmed_owner(c, outbox)
        for photo in sorted(references.iterdir()):
            c.post(
                "/api/v1/reference-photos",
                headers=auth,
                files={"file": (photo.name, photo.read_bytes())},
            ).raise_for_status()
        friend = c.post(
            "/api/v1/friends", headers=auth, json={"name": "Friend", "email": "friend@example.org"}
        ).json()
        invite = friend["invite_url"].rsplit("/", 1)[1]
        c.post(f"/api/v1/invites/{invite}/consent", json={"accept": True}).raise_for_status()
        return auth, invite


def upload(base: str, invite: str, export: Path) -> tuple[int, float]:
    start_t = time.perf_counter()
    with export.open("rb") as f, httpx.Client(base_url=base, timeout=600) as c:
        answer = c.post(
            f"/api/v1/invites/{invite}/exports", files={"file": (export.name, f, "application/zip")}
        )
    answer.raise_for_status()
    return int(answer.json()["scan_id"]), time.perf_counter() - start_t


def wait_scan(base: str, invite: str, scan_id: int) -> tuple[dict, float]:
    start_t = time.perf_counter()
    while True:
        scan = httpx.get(f"{base}/api/v1/invites/{invite}/scans/{scan_id}", timeout=30).json()
        if scan["status"] in ("done", "failed"):
            return scan, time.perf_counter() - start_t
        time.sleep(0.5)


def run_service(export: Path, references: Path, workers: int, work: Path) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        PHOTO_REMOVAL_DATA_DIR=str(work / "data"),
        PHOTO_REMOVAL_SCAN_WORKERS=str(workers),
        PHOTO_REMOVAL_BASE_URL=base,
        PHOTO_REMOVAL_MAX_UPLOAD_BYTES=str(50 * 2**30),
    )
    exe = shutil.which("photo-removal") or "photo-removal"
    use_redis = redis_up()
    if use_redis:
        env["PHOTO_REMOVAL_QUEUE_URL"] = "redis://127.0.0.1:6379/14"
        import redis

        redis.Redis.from_url(env["PHOTO_REMOVAL_QUEUE_URL"]).flushdb()
    server = start([exe, "serve", "--port", str(port)], env, work / "server.log")
    worker = start([exe, "worker"], env, work / "worker.log") if use_redis else None
    samplers = {"server": TreeSampler(server.pid)}
    if worker:
        samplers["worker"] = TreeSampler(worker.pid)
    for sampler in samplers.values():
        sampler.start()
    try:
        wait_healthy(base)
        _, invite = prepare_friend(base, references, work / "data" / "outbox")
        upload_peak = {}
        scan_id, upload_s = upload(base, invite, export)
        upload_peak = {name: s.peak_rss / 1e6 for name, s in samplers.items()}
        scan, scan_s = wait_scan(base, invite, scan_id)
    finally:
        for sampler in samplers.values():
            sampler.done.set()
        for proc in (server, worker):
            if proc is not None:
                kill_tree(TreeSampler(proc.pid).root)
    return {
        "mode": "redis + worker" if use_redis else "embedded sqlite queue",
        "upload_s": upload_s,
        "scan": scan,
        "scan_s": scan_s,
        "upload_peak": upload_peak,
        "peak": {name: s.peak_rss / 1e6 for name, s in samplers.items()},
    }


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--size-gb", type=float, default=1.1)
    args = parser.parse_args()
    set_dir = build_set.DEFAULT_OUT
    build_set.build(set_dir)
    references = set_dir / "references" / "obama"
    export = OUT / "export.zip"
    photos, size = build_export(set_dir / "photos", export, int(args.size_gb * 1e9))
    with tempfile.TemporaryDirectory(prefix="service-bench-") as folder:
        service = run_service(export, references, args.workers, Path(folder))
        bare = run_measured(
            [
                shutil.which("photo-removal") or "photo-removal",
                "scan",
                "--reference",
                str(references),
                "--photos",
                str(export),
                "--workers",
                str(args.workers),
                "--json",
            ],
            None,
            3 * 3600,
        )
    print(report(service, bare, photos, size, args.workers))


def report(service: dict, bare: Measured, photos: int, size: int, workers: int) -> str:
    scan = service["scan"]
    bare_doc = json.loads(bare.stdout) if bare.returncode == 0 else {"matches": []}
    mb = size / 1e6
    jobs_rate = scan["photos_done"] / service["scan_s"]
    bare_rate = photos / bare.wall_s
    peak = service["peak"]
    scanned = f"{scan['status']}, {scan['photos_done']} photos, {scan['matches']} matches"
    rows = [
        ("measure", "value"),
        ("export", f"{mb:,.0f} MB ZIP, {photos} photos (+ videos)"),
        ("queue", service["mode"]),
        (
            "upload through the API",
            f"{service['upload_s']:.1f} s = {mb / service['upload_s']:,.0f} MB/s",
        ),
        ("server peak RSS during upload", f"{service['upload_peak'].get('server', 0):,.0f} MB"),
        ("scan via jobs", f"{scanned} in {service['scan_s']:.1f} s = {jobs_rate:.2f} photos/s"),
        (
            "bare `photo-removal scan`",
            f"{len(bare_doc['matches'])} matches in {bare.wall_s:.1f} s = {bare_rate:.2f} photos/s",
        ),
        ("jobs / bare throughput", f"{jobs_rate / bare_rate:.2f}"),
        ("server peak RSS (tree)", f"{peak.get('server', 0):,.0f} MB"),
        ("worker peak RSS (tree, with its engine processes)", f"{peak.get('worker', 0):,.0f} MB"),
        ("bare scan peak RSS (tree)", f"{bare.peak_rss_mb:,.0f} MB"),
    ]
    command = "uv run python tests/bench/service_bench.py"
    return f"{table(rows)}\n\n{workers} engine processes; command: {command}"


if __name__ == "__main__":
    main()
