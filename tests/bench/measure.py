"""Run a command, timing it and sampling the memory and CPU time of its whole process tree."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass

import psutil

SAMPLE_EVERY_S = 0.05


@dataclass(frozen=True)
class Measured:
    """What a finished command printed, its time and CPU time, and the most memory its tree held."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float  # sampled, so each process's last 50 ms are missing
    peak_rss_mb: float


class TreeSampler(threading.Thread):
    """Samples a process tree until stopped: the largest RSS sum seen, and the CPU time of
    every process that was part of it (up to its last sample)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self.cpu: dict[tuple[int, float], float] = {}  # by pid and start time: pids get reused
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self.done.wait(SAMPLE_EVERY_S):
                return

    def sample(self) -> None:
        try:
            family = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:  # the root has just exited
            return
        rss = 0
        for proc in family:
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    self.cpu[(proc.pid, proc.create_time())] = times.user + times.system
            except psutil.Error:  # a worker that exited between listing and reading
                continue
        self.peak_rss = max(self.peak_rss, rss)


def kill_tree(root: psutil.Process) -> None:
    """Kill a command and its workers, which would otherwise outlive it."""
    try:
        family = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for proc in family:
        try:
            proc.kill()
        except psutil.Error:
            continue


def run_measured(argv: list[str], env: dict[str, str] | None, timeout_s: float) -> Measured:
    """Run argv to completion (killed after timeout_s), with its wall time and peak memory."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    sampler = TreeSampler(proc.pid)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_tree(sampler.root)
        stdout, stderr = proc.communicate()
        stderr += f"\nkilled after {timeout_s:.0f} s"
    wall = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    cpu = sum(sampler.cpu.values())
    return Measured(proc.returncode, stdout, stderr, wall, cpu, sampler.peak_rss / 1e6)
