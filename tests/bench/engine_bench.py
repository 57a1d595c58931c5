"""`make bench`: our `photo-removal scan` against the face_recognition command line, same photos."""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from build_set import ARCHIVE_COPIES, DEFAULT_OUT, build
from measure import Measured, run_measured

# The face_recognition CLI's own file filter (re.match, so not anchored at the end).
CLI_READS = re.compile(r".*\.(jpg|jpeg|png)", flags=re.IGNORECASE)
RUN_TIMEOUT_S = 3 * 3600

Pairs = set[tuple[str, str]]


@dataclass(frozen=True)
class Outcome:
    """What one run reported: photos it read, photos it failed on, (photo, person) pairs."""

    read: int
    errors: int
    pairs: Pairs


@dataclass(frozen=True)
class Run:
    """One measured command and the truth its answers are scored against."""

    name: str
    argv: list[str]
    truth: dict[str, list[str]]  # key as the run reports it -> enrolled people in the photo
    subset: set[str]  # keys of the JPEG/PNG photos, the ones the CLI can read
    parse: Callable[[str], Outcome]
    env: dict[str, str] | None = None


@dataclass(frozen=True)
class Row:
    run: Run
    measured: Measured
    outcome: Outcome | None
    failure: str = ""


def executable(name: str) -> str:
    """A console script of this venv, called directly so `uv run` is not part of the measure."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit(f"{name} is not installed in this environment")
    return found


def parse_cli(stdout: str, photos_dir: Path) -> Outcome:
    """Pairs from `path,name,distance` lines, one per known person within tolerance of a face."""
    prefix = f"{photos_dir}{os.sep}"
    # Split on the path, not on lines: pool workers write a line and its newline separately,
    # so lines from two workers can interleave.
    read, pairs = set(), set()
    for record in stdout.split(prefix)[1:]:
        photo, label = record.strip().split(",")[:2]
        read.add(photo)
        if label not in ("unknown_person", "no_persons_found"):
            pairs.add((photo, label.rsplit("__", 1)[0]))  # reference files are <person>__<n>
    return Outcome(len(read), 0, pairs)


def parse_ours(stdout: str) -> Outcome:
    doc = json.loads(stdout)
    pairs = {(m["photo"], m["person"]) for m in doc["matches"]}
    return Outcome(doc["photos_scanned"], len(doc["errors"]), pairs)


def normalized(pairs: Pairs, truth: dict[str, list[str]]) -> Pairs:
    """Pairs keyed like the truth: keep as many trailing path parts as its keys have."""
    depth = len(Path(next(iter(truth))).parts)
    return {("/".join(Path(photo).parts[-depth:]), person) for photo, person in pairs}


def recall_precision(pairs: Pairs, truth: dict[str, list[str]], keys: set[str]) -> tuple:
    expected = {(key, person) for key in keys for person in truth[key]}
    found = {(key, person) for key, person in normalized(pairs, truth) if key in keys}
    hits = len(found & expected)
    recall = hits / len(expected) if expected else math.nan
    return recall, (hits / len(found) if found else math.nan)


def cli_run(set_dir: Path, workers: int, truth: dict[str, list[str]]) -> Run:
    """The face_recognition CLI on the photos folder (it reads its JPEG/PNG files only)."""
    photos_dir = set_dir / "photos"
    argv = [executable("face_recognition"), "--cpus", str(workers), "--show-distance", "true"]
    argv += [str(set_dir / "references_cli"), str(photos_dir)]
    # Unbuffered: the CLI never closes its pool, so lines its workers buffered could be lost.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    name = "face_recognition CLI, JPEG/PNG"
    return Run(name, argv, truth, set(truth), lambda out: parse_cli(out, photos_dir), env)


def scan_run(
    set_dir: Path, workers: int, name: str, paths: list[Path], truth: dict, subset: set[str]
) -> Run:
    """Our scan with the same number of worker processes as the CLI."""
    argv = [executable("photo-removal"), "scan", "--reference", str(set_dir / "references")]
    argv += ["--photos", *map(str, paths), "--workers", str(workers), "--json"]
    return Run(name, argv, truth, subset, parse_ours)


def plan_runs(set_dir: Path, truth: dict[str, dict], workers: int, ours: bool) -> list[Run]:
    """The CLI on what it can read, then our scan on the same files, the folder and archives."""
    persons = {name: entry["persons"] for name, entry in truth.items()}
    readable = {n: p for n, p in persons.items() if CLI_READS.match(n)}
    runs = [cli_run(set_dir, workers, readable)]
    if not ours:
        return runs
    photos, archives = set_dir / "photos", set_dir / "archives"
    tripled = {f"{d}/{n}": p for d in ARCHIVE_COPIES for n, p in persons.items()}
    tripled_readable = {f"{d}/{n}" for d in ARCHIVE_COPIES for n in readable}
    files = [photos / name for name in sorted(readable)]
    scan = functools.partial(scan_run, set_dir, workers)
    return [
        *runs,
        scan("ours, same JPEG/PNG files", files, readable, set(readable)),
        scan("ours, all of photos/", [photos], persons, set(readable)),
        scan("ours, photos.zip", [archives / "photos.zip"], persons, set(readable)),
        scan("ours, photos_x3.zip", [archives / "photos_x3.zip"], tripled, tripled_readable),
    ]


def execute(run: Run, results: Path) -> Row:
    """Run one command; keep its output for a later look at what it missed."""
    print(f"running: {run.name} ...", file=sys.stderr, flush=True)
    measured = run_measured(run.argv, run.env, RUN_TIMEOUT_S)
    slug = re.sub(r"[^a-z0-9]+", "_", run.name.lower()).strip("_")
    (results / f"{slug}.stdout").write_text(measured.stdout)
    (results / f"{slug}.stderr").write_text(measured.stderr)
    if measured.returncode != 0:
        last = (measured.stderr.strip().splitlines() or ["no output"])[-1]
        return Row(run, measured, None, f"exit status {measured.returncode}: {last}")
    try:
        return Row(run, measured, run.parse(measured.stdout))
    except (ValueError, KeyError) as e:
        return Row(run, measured, None, f"unreadable output: {e}")


COLUMNS = (
    *("run", "given", "read", "errors", "recall", "precision", "recall JPEG/PNG"),
    *("wall s", "CPU s", "photos/s", "peak MB", "speed vs CLI"),
)


def cells(row: Row, cli_rate: float) -> list[str]:
    """One table line; a failed run keeps its name, size and time and says why it failed."""
    given, measured = len(row.run.truth), row.measured
    rate = given / measured.wall_s
    timing = [f"{measured.wall_s:.1f}", f"{measured.cpu_s:.0f}"]
    peak = f"{measured.peak_rss_mb:.0f}"
    if row.outcome is None:
        return [row.run.name, str(given), "failed", row.failure, "", "", "", *timing, "", peak, ""]
    truth, pairs = row.run.truth, row.outcome.pairs
    recall, precision = recall_precision(pairs, truth, set(truth))
    readable_recall, _ = recall_precision(pairs, truth, row.run.subset)
    ratio = f"{rate / cli_rate:.2f}x" if cli_rate else "n/a"
    counts = [str(given), str(row.outcome.read), str(row.outcome.errors)]
    quality = [f"{recall:.3f}", f"{precision:.3f}", f"{readable_recall:.3f}"]
    return [row.run.name, *counts, *quality, *timing, f"{rate:.2f}", peak, ratio]


def table(rows: list[Row]) -> str:
    """Aligned plain text with pipes: names left, numbers right."""
    cli = rows[0]
    cli_rate = len(cli.run.truth) / cli.measured.wall_s if cli.outcome else 0.0
    lines = [list(COLUMNS), *(cells(row, cli_rate) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]

    def render(line: list[str]) -> str:
        pairs = enumerate(zip(line, widths, strict=True))
        parts = [cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in pairs]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([render(lines[0]), rule, *(render(line) for line in lines[1:])])


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, flags=re.MULTILINE)
    name = model.group(1).strip() if model else platform.processor() or "unknown CPU"
    # Others' jobs share the machine: the load says how far the wall times can be trusted.
    load = "/".join(f"{n:.1f}" for n in os.getloadavg())
    return f"{os.cpu_count()} CPUs, {name}, Python {platform.python_version()}, load {load}"


def write_report(rows: list[Row], path: Path) -> None:
    """Every run's command and the pairs it missed or invented, for a look after the table."""
    report = []
    for row in rows:
        entry: dict[str, object] = {"run": row.run.name, "argv": row.run.argv}
        entry.update(failure=row.failure, wall_s=row.measured.wall_s, cpu_s=row.measured.cpu_s)
        entry.update(peak_rss_mb=row.measured.peak_rss_mb)
        if row.outcome is not None:
            found = normalized(row.outcome.pairs, row.run.truth)
            expected = {(k, p) for k, persons in row.run.truth.items() for p in persons}
            entry["missed"] = sorted(expected - found)
            entry["false"] = sorted(found - expected)
        report.append(entry)
    path.write_text(json.dumps(report, indent=1))


def scan_available() -> bool:
    """Whether our scan command exists yet (it was written alongside this bench)."""
    found = shutil.which("photo-removal")
    if found is None:
        return False
    probe = subprocess.run([found, "scan", "--help"], capture_output=True, check=False)
    return probe.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    cpus = os.cpu_count() or 1
    parser.add_argument("--workers", type=int, default=cpus, help="processes for every tool")
    parser.add_argument("--set-dir", type=Path, default=DEFAULT_OUT, help="benchmark set")
    args = parser.parse_args()
    started = time.perf_counter()
    truth = build(args.set_dir)["photos"]
    ready_s = time.perf_counter() - started
    ours = scan_available()
    results = args.set_dir / "results"
    results.mkdir(exist_ok=True)
    rows = [execute(run, results) for run in plan_runs(args.set_dir, truth, args.workers, ours)]
    write_report(rows, results / "report.json")
    print(table(rows))
    if not ours:
        print("ours: `photo-removal scan` is not available yet, only the CLI ran")
    script = os.path.relpath(Path(sys.argv[0]).resolve())
    print(f"command: {shlex.join(['uv', 'run', 'python', script, *sys.argv[1:]])}")
    print(f"N = {args.workers} processes per run; machine: {machine()}")
    total_s = time.perf_counter() - started
    print(f"set: {len(truth)} photos in {args.set_dir} (ready in {ready_s:.0f} s)")
    print(f"bench: {total_s:.0f} s in all; missed and false pairs per run: {results}")
    return 0 if ours and all(row.outcome for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
