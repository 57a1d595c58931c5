"""`make bench`, uploads: a 2 GB export sent to a real server as one form POST and by tus (in the
share page's 32 MiB pieces), and by tus with the connection cut at half and resumed.

Run: uv run python tests/bench/upload_bench.py [--size-gb 2.0]
Starts `photo-removal serve` (SQLite, embedded queue) on loopback, with one owner and a friend
who accepted. Each upload becomes a scan that ends at once (the owner has no reference photo),
so the scans do not compete with the uploads for the CPU. Prints one table: seconds, MB/s, the
bytes sent again after a drop at half, and the server's peak memory while receiving.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.measure import TreeSampler, kill_tree
from tests.bench.service_bench import confirmed_owner, free_port, start, table, wait_healthy

CHUNK = 32 * 2**20  # as web/static/app.js sends
TUS = {"Tus-Resumable": "1.0.0"}
BYTES = {**TUS, "Content-Type": "application/offset+octet-stream"}


def build_export(path: Path, size: int) -> Path:
    """A ZIP of videos, stored, as a big export mostly is."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        n = 0
        while path.stat().st_size < size:
            z.writestr(f"videos/VID_{n:04}.mp4", os.urandom(min(256 * 2**20, size)))
            n += 1
    return path


def friend_token(c: httpx.Client, outbox: Path) -> str:
    """A confirmed owner (the first is the admin) and a new friend who accepted: their token."""
    auth = confirmed_owner(c, outbox)
    friends = c.get("/api/v1/friends", headers=auth).json()
    number = len(friends)
    friend = c.post(
        "/api/v1/friends",
        headers=auth,
        json={"name": f"Friend {number}", "email": f"friend{number}@example.org"},
    ).json()
    token: str = friend["invite_url"].rsplit("/", 1)[1]
    c.post(f"/api/v1/invites/{token}/consent", json={"accept": True}).raise_for_status()
    return token


def plain(c: httpx.Client, export: Path, outbox: Path) -> None:
    token = friend_token(c, outbox)
    with export.open("rb") as f:
        answer = c.post(
            f"/api/v1/invites/{token}/exports", files={"file": (export.name, f, "application/zip")}
        )
    answer.raise_for_status()


def create(c: httpx.Client, token: str, export: Path) -> str:
    name = base64.b64encode(export.name.encode()).decode()
    created = c.post(
        f"/api/v1/invites/{token}/uploads",
        headers={
            **TUS,
            "Upload-Length": str(export.stat().st_size),
            "Upload-Metadata": f"filename {name}",
        },
    )
    created.raise_for_status()
    return str(created.headers["Location"])


def send_from(c: httpx.Client, url: str, export: Path, at: int) -> None:
    """The pieces from `at` to the end, one PATCH each, as tus-js-client sends them."""
    with export.open("rb") as f:
        f.seek(at)
        while piece := f.read(CHUNK):
            sent = c.patch(url, content=piece, headers={**BYTES, "Upload-Offset": str(at)})
            sent.raise_for_status()
            at = int(sent.headers["Upload-Offset"])


def scan(c: httpx.Client, token: str, url: str) -> None:
    queued = c.post(f"/api/v1/invites/{token}/exports", json={"uploads": [url.rsplit("/", 1)[1]]})
    queued.raise_for_status()


def resumable(c: httpx.Client, export: Path, outbox: Path) -> None:
    token = friend_token(c, outbox)
    url = create(c, token, export)
    send_from(c, url, export, 0)
    scan(c, token, url)


def cut_and_resumed(c: httpx.Client, port: int, export: Path, outbox: Path) -> int:
    """One PATCH of the whole file whose connection drops at half; HEAD; the rest in pieces.
    Returns the bytes sent twice (sent before the drop but not kept)."""
    token = friend_token(c, outbox)
    url = create(c, token, export)
    size = export.stat().st_size
    head = (
        f"PATCH {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as wire, export.open("rb") as f:
        wire.sendall(head)
        left = size // 2
        while left:
            piece = f.read(min(CHUNK, left))
            wire.sendall(piece)
            left -= len(piece)
    at = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the server has seen the drop and let go
        answer = c.head(url, headers=TUS)
        at = int(answer.headers["Upload-Offset"])
        probe = c.patch(url, content=b"", headers={**BYTES, "Upload-Offset": str(at)})
        if probe.status_code == 204:
            break
        time.sleep(0.05)
    send_from(c, url, export, at)
    scan(c, token, url)
    return size // 2 - at


def timed(sampler: TreeSampler, step) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    sampler.peak_rss = 0
    began = time.perf_counter()
    result = step()
    return time.perf_counter() - began, sampler.peak_rss / 1e6, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-gb", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="upload-bench-") as folder:
        work = Path(folder)
        export = build_export(work / "takeout-001.zip", int(args.size_gb * 2**30))
        size_mb = export.stat().st_size / 1e6
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(
            os.environ,
            PHOTO_REMOVAL_DATA_DIR=str(work / "data"),
            PHOTO_REMOVAL_BASE_URL=base,
            PHOTO_REMOVAL_MAX_UPLOAD_BYTES=str(50 * 2**30),
        )
        outbox = work / "data" / "outbox"
        exe = shutil.which("photo-removal") or "photo-removal"
        server = start([exe, "serve", "--port", str(port)], env, work / "server.log")
        sampler = TreeSampler(server.pid)
        sampler.start()
        try:
            wait_healthy(base)
            with httpx.Client(base_url=base, timeout=600) as c:
                runs = [
                    ("one form POST", timed(sampler, lambda: plain(c, export, outbox))),
                    ("tus, 32 MiB pieces", timed(sampler, lambda: resumable(c, export, outbox))),
                    (
                        "tus, cut at half, resumed",
                        timed(sampler, lambda: cut_and_resumed(c, port, export, outbox)),
                    ),
                ]
        finally:
            sampler.done.set()
            kill_tree(sampler.root)
    rows = [(f"upload of {size_mb:,.0f} MB", "s", "MB/s", "sent again after a drop", "server RSS")]
    for name, (seconds, peak, resent) in runs:
        again = "-" if resent is None else f"{int(resent) / 1e6:,.1f} MB"  # type: ignore[call-overload]
        rows.append((name, f"{seconds:.1f}", f"{size_mb / seconds:,.0f}", again, f"{peak:,.0f} MB"))
    rows[1] = (*rows[1][:3], f"all {size_mb:,.0f} MB (a new POST)", rows[1][4])
    print(table(rows))
    print("\nOn loopback, SQLite; command: uv run python tests/bench/upload_bench.py")


if __name__ == "__main__":
    main()
