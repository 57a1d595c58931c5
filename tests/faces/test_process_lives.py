"""A scanner's engine processes die with the process that started them, even one SIGKILLed."""

from __future__ import annotations

import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from service.faces.lifeline import CHECK_EVERY_S
from service.faces.matching import Gallery, Thresholds
from service.faces.scanner import PhotoScan, Scanner
from service.ingest.items import PhotoItem

PROJECT = Path(__file__).resolve().parents[2]

# A process that scans as a job worker does, prints its engine processes' pids, then waits.
SCANNING_PARENT = """
import multiprocessing, sys, time
from pathlib import Path

import numpy as np

from service.faces.matching import Gallery, Thresholds
from service.faces.scanner import Scanner
from service.ingest.items import PhotoItem

faces = Path(sys.argv[1])
reference = (faces / "dev/obama/obama.jpg").read_bytes()
photo = (faces / "dev/obama/obama-240p.jpg").read_bytes()
with Scanner(None, Thresholds.load(), workers=2) as scanner:
    # Two at once, so the pool starts both of its processes.
    codes = scanner.references([reference, reference])
    scanner.gallery = Gallery({"obama": np.array(codes)})
    [(_, result)] = scanner.scan([PhotoItem(key="obama.jpg", read=lambda: photo)])
    assert result.near(Thresholds.load().possible), "the scan found no one"
    print(*[child.pid for child in multiprocessing.active_children()], flush=True)
    time.sleep(300)
"""


def test_it_leaves_no_engine_process_behind_when_its_parent_is_killed(
    faces_dir: Path, tmp_path: Path
) -> None:
    errors = tmp_path / "stderr.txt"
    engines: list[psutil.Process] = []
    with (
        errors.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-c", SCANNING_PARENT, str(faces_dir)],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as parent,
    ):
        try:
            line = first_line(parent, within=90.0)
            assert line, f"the scanning process printed nothing:\n{errors.read_text()}"
            engines = [psutil.Process(int(pid)) for pid in line.split()]
            assert len(engines) == 2
            assert all(engine.ppid() == parent.pid for engine in engines)

            parent.kill()
            parent.wait(timeout=10)

            assert survivors(engines, within=15.0) == []
        finally:
            parent.kill()
            for engine in engines:  # a failed run must not leave 170 MB processes behind
                if alive(engine):
                    engine.kill()


def test_it_keeps_its_engine_processes_when_the_thread_that_started_them_ends(
    gallery: Gallery, thresholds: Thresholds, faces_dir: Path
) -> None:
    # A job may drive a scanner from a thread that ends before the scanner does. A parent-death
    # signal (prctl) would kill the engines with that thread, failing every later photo.
    photo = (faces_dir / "dev/obama/obama-240p.jpg").read_bytes()
    items = [PhotoItem(key=f"{n}.jpg", read=lambda n=n: photo + bytes([n])) for n in range(4)]
    results: list[PhotoScan] = []
    with Scanner(gallery, thresholds, workers=2) as scanner:
        starter = threading.Thread(target=lambda: results.extend(r for _, r in scanner.scan(items)))
        starter.start()
        starter.join(timeout=60)
        time.sleep(2 * CHECK_EVERY_S)
        results.extend(r for _, r in scanner.scan(items))
    assert len(results) == 8
    assert [r.error for r in results] == [None] * 8


def first_line(process: subprocess.Popen[str], within: float) -> str:
    """The first line the process prints, or "" if it exits or stays silent that long."""
    assert process.stdout is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.5)
        if readable:
            return process.stdout.readline()
        if process.poll() is not None:
            return ""
    return ""


def alive(process: psutil.Process) -> bool:
    # A zombie has exited: it only waits for its new parent (init) to collect its status.
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def survivors(processes: list[psutil.Process], within: float) -> list[int]:
    """The pids of `processes` still alive after up to `within` seconds."""
    deadline = time.monotonic() + within
    while (left := [p for p in processes if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p.pid for p in left]
