"""`make bench`: how precisely our scan picks owners' faces out of platform photos, per face and
per demographic group, next to the face_recognition command line on the same photos."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine_bench import CLI_READS, RUN_TIMEOUT_S, executable, machine, parse_cli, scan_available
from measure import Measured, run_measured
from platform_set import PROJECT_ROOT, add_sets_argument, build, chosen_sets

IOU_MIN = 0.3
WRONG_SHARE_FLAG = 0.2  # a group whose proposals are wrong this often is flagged (diverse set)
Box = tuple[int, int, int, int]  # top, right, bottom, left


@dataclass(frozen=True)
class Face:
    """One face of the truth, in the upright photo."""

    photo: str
    person: str
    box: Box
    owner: bool
    group: str  # observed demographic group


@dataclass(frozen=True)
class Proposal:
    """One match our scan reported: a face it says is this owner."""

    photo: str
    person: str
    box: Box
    decision: tuple[str, str]  # (person, group): what the owner decides at once
    distance: float
    band: str


@dataclass
class Verdict:
    """A proposal scored: right when it lies on a face of the person it names."""

    proposal: Proposal
    correct: bool
    face: Face | None  # the face it lies on, if any
    reason: str = ""


@dataclass
class Score:
    """One run's result on one set, face level (ours) or photo level (both)."""

    expected: int  # owner faces, or (photo, owner) pairs at photo level
    proposals: int
    correct: int
    found: int  # expected items hit at least once
    decisions: int | None = None
    mixed: int | None = None
    missed: list[dict] = field(default_factory=list)
    false: list[dict] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def wrong(self) -> int:
        return self.proposals - self.correct

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else math.nan

    @property
    def precision(self) -> float:
        return self.correct / self.proposals if self.proposals else math.nan


@dataclass(frozen=True)
class Row:
    name: str
    argv: list[str]
    photos: int
    measured: Measured
    score: Score | None
    failure: str = ""


# ---------------------------------------------------------------- truth and overlap


def truth_faces(truth: dict, photos: Iterable[str]) -> dict[str, list[Face]]:
    """The faces of every photo run, keyed by file name."""
    return {
        name: [
            Face(name, f["person"], tuple(f["box"]), f["owner"], f["group"])
            for f in truth["photos"][name]["faces"]
        ]
        for name in photos
    }


def iou(a: Box, b: Box) -> float:
    top, right = max(a[0], b[0]), min(a[1], b[1])
    bottom, left = min(a[2], b[2]), max(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)

    def area(x: Box) -> int:
        return (x[1] - x[3]) * (x[2] - x[0])

    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def centre_inside(a: Box, b: Box) -> bool:
    """Whether the centre of a lies in b."""
    y, x = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    return b[0] <= y <= b[2] and b[3] <= x <= b[1]


def overlaps(found: Box, face: Box) -> bool:
    """The same face: boxes of a tilted or blurred face differ, so either centre inside the other
    box counts as well as IoU >= 0.3."""
    return iou(found, face) >= IOU_MIN or centre_inside(found, face) or centre_inside(face, found)


# ---------------------------------------------------------------- parsing


def parse_ours(stdout: str) -> list[Proposal]:
    """Matches of the scan's JSON; a match without `group` is a decision of its own."""
    doc = json.loads(stdout)
    proposals = []
    for i, m in enumerate(doc["matches"]):
        group = str(m["group"]) if m.get("group") is not None else f"alone-{i}"
        proposals.append(
            Proposal(
                Path(m["photo"]).name,
                m["person"],
                tuple(m["box"]),
                (m["person"], group),
                float(m.get("distance", math.nan)),
                str(m.get("band", "")),
            )
        )
    return proposals


# ---------------------------------------------------------------- scoring


def judge(proposal: Proposal, faces: list[Face], claimed: set[Face]) -> Verdict:
    """Right when on a not yet claimed face of the person named; otherwise say whose face it is."""
    on = [f for f in faces if overlaps(proposal.box, f.box)]
    own = [f for f in on if f.person == proposal.person]
    if own:
        face = max(own, key=lambda f: iou(proposal.box, f.box))
        if face in claimed:
            return Verdict(proposal, False, face, "same face proposed twice")
        claimed.add(face)
        return Verdict(proposal, True, face)
    if not on:
        return Verdict(proposal, False, None, "no face of the truth there")
    face = max(on, key=lambda f: iou(proposal.box, f.box))
    role = "another owner" if face.owner else "a stranger"
    return Verdict(proposal, False, face, f"{role}: {face.person} ({face.group})")


def face_entry(face: Face, truth: dict) -> dict:
    """A missed face with what makes it hard, for the report."""
    photo = truth["photos"][face.photo]
    full = next(f for f in photo["faces"] if tuple(f["box"]) == face.box)
    return {
        "photo": face.photo,
        "person": face.person,
        "group": face.group,
        "box": list(face.box),
        "width": full["width"],
        "tilt": full["tilt"],
        "kind": photo["kind"],
        "effect": photo["effect"],
    }


def score_faces(proposals: list[Proposal], faces: dict[str, list[Face]], truth: dict) -> Score:
    """Face level: each proposal right or wrong; recall over the owners' faces."""
    claimed: set[Face] = set()
    verdicts = [
        judge(p, faces.get(p.photo, []), claimed)
        for p in sorted(proposals, key=lambda p: p.distance)  # the nearest claims a face first
    ]
    owner_faces = [f for fs in faces.values() for f in fs if f.owner]
    by_decision: dict[tuple[str, str], set[bool]] = defaultdict(set)
    for v in verdicts:
        by_decision[v.proposal.decision].add(v.correct)
    false = [
        {
            "photo": v.proposal.photo,
            "person": v.proposal.person,
            "box": list(v.proposal.box),
            "distance": v.proposal.distance,
            "band": v.proposal.band,
            "group": v.proposal.decision[1],
            "why": v.reason,
        }
        for v in verdicts
        if not v.correct
    ]
    return Score(
        expected=len(owner_faces),
        proposals=len(verdicts),
        correct=sum(v.correct for v in verdicts),
        found=len(claimed),
        decisions=len(by_decision),
        mixed=sum(len(outcomes) == 2 for outcomes in by_decision.values()),
        missed=[face_entry(f, truth) for f in owner_faces if f not in claimed],
        false=false,
        verdicts=verdicts,
    )


def score_pairs(pairs: set[tuple[str, str]], faces: dict[str, list[Face]]) -> Score:
    """Photo level, all the CLI can say: (photo, owner) pairs."""
    expected = {(f.photo, f.person) for fs in faces.values() for f in fs if f.owner}
    pairs = {(Path(photo).name, person) for photo, person in pairs}
    hits = pairs & expected
    return Score(
        expected=len(expected),
        proposals=len(pairs),
        correct=len(hits),
        found=len(hits),
        missed=[{"photo": p, "person": s} for p, s in sorted(expected - pairs)],
        false=[{"photo": p, "person": s} for p, s in sorted(pairs - expected)],
    )


# ---------------------------------------------------------------- runs


def subset_dir(set_dir: Path, names: list[str]) -> Path:
    """A folder of hard links to some of the photos, for a quick trial run. Hard, not symbolic:
    the scan skips links that lead out of the folder it is given."""
    sub = set_dir / f"subset_{len(names)}"
    shutil.rmtree(sub, ignore_errors=True)
    sub.mkdir()
    for name in names:
        os.link(set_dir / "photos" / name, sub / name)
    return sub


def execute(
    name: str, argv: list[str], photos: int, parse: Callable[[str], Score], env: dict | None = None
) -> Row:
    """Run one command, measured; keep its output beside the report."""
    print(f"running: {name} ...", file=sys.stderr, flush=True)
    measured = run_measured(argv, env, RUN_TIMEOUT_S)
    if measured.returncode != 0:
        last = (measured.stderr.strip().splitlines() or ["no output"])[-1]
        return Row(name, argv, photos, measured, None, f"exit status {measured.returncode}: {last}")
    try:
        return Row(name, argv, photos, measured, parse(measured.stdout))
    except (ValueError, KeyError, TypeError) as e:
        return Row(name, argv, photos, measured, None, f"unreadable output: {e}")


@dataclass
class SetResult:
    name: str
    set_dir: Path
    truth: dict
    faces: dict[str, list[Face]]
    rows: list[Row]
    faces_found: int | None = None
    startup: str = ""


def bench_set(name: str, workers: int, limit: int | None, ours: bool) -> SetResult:
    """Build the set if needed, then run the CLI and our scan on the same photos."""
    set_dir = PROJECT_ROOT / ".bench" / name
    truth = build(name, set_dir)
    names = sorted(truth["photos"])
    if limit and limit < len(names):
        step = len(names) / limit
        names = [names[int(i * step)] for i in range(limit)]
        photos_dir = subset_dir(set_dir, names)
    else:
        photos_dir = set_dir / "photos"
    faces = truth_faces(truth, names)
    results = set_dir / "results"
    results.mkdir(exist_ok=True)
    cli = [executable("face_recognition"), "--cpus", str(workers), "--show-distance", "true"]
    cli += [str(set_dir / "references_cli"), str(photos_dir)]
    # Unbuffered: the CLI never closes its pool, so lines its workers buffered could be lost.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    readable = [n for n in names if CLI_READS.match(n)]  # the CLI skips HEIC and WebP
    rows = [
        execute(
            "face_recognition CLI (photo level)",
            cli,
            len(readable),
            lambda out: score_pairs(parse_cli(out, photos_dir).pairs, faces),
            env,
        )
    ]
    result = SetResult(name, set_dir, truth, faces, rows)
    if not ours:
        return result
    scan = [executable("photo-removal"), "scan", "--reference", str(set_dir / "references")]
    scan += ["--workers", str(workers), "--json", "--photos"]
    row = execute(
        "ours (face level)",
        [*scan, str(photos_dir)],
        len(names),
        lambda out: score_faces(parse_ours(out), faces, truth),
    )
    rows.append(row)
    if len(readable) < len(names):  # the same files as the CLI, for the speed column
        same = truth_faces(truth, readable)
        rows.append(
            execute(
                "ours on JPEG and PNG (face level)",
                [*scan, str(subset_dir(set_dir, readable))],
                len(readable),
                lambda out: score_faces(parse_ours(out), same, truth),
            )
        )
    result.startup = startup(set_dir, workers)
    if row.score is not None:
        doc = json.loads(row.measured.stdout)
        result.faces_found = doc.get("faces_found")
        pairs = {(p.photo, p.person) for p in parse_ours(row.measured.stdout)}
        rows.append(
            Row("ours (photo level)", row.argv, len(names), row.measured, score_pairs(pairs, faces))
        )
    for r in rows:
        slug = r.name.split(" (")[0].replace(" ", "_").lower()
        (results / f"{slug}.stdout").write_text(r.measured.stdout)
        (results / f"{slug}.stderr").write_text(r.measured.stderr)
    return result


def startup(set_dir: Path, workers: int) -> str:
    """What each tool costs before its first photo: both run on an empty folder with the set's
    references (processes started, models loaded, every reference encoded)."""
    empty = set_dir / "empty"
    empty.mkdir(exist_ok=True)
    references = sum(1 for f in (set_dir / "references").rglob("*") if f.is_file())
    scan = [executable("photo-removal"), "scan", "--reference", str(set_dir / "references")]
    scan += ["--photos", str(empty), "--workers", str(workers), "--json"]
    cli = [executable("face_recognition"), "--cpus", str(workers)]
    cli += [str(set_dir / "references_cli"), str(empty)]
    ours, theirs = (run_measured(argv, None, RUN_TIMEOUT_S) for argv in (scan, cli))
    return (
        f"  start-up before the first photo ({references} references, an empty folder): ours "
        f"{ours.wall_s:.1f} s, the CLI {theirs.wall_s:.1f} s"
    )


# ---------------------------------------------------------------- tables


def render_table(header: list[str], lines: list[list[str]]) -> str:
    """Aligned plain text with pipes: the first column left, the others right."""
    rows = [header, *lines]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def render(line: list[str]) -> str:
        cells = enumerate(zip(line, widths, strict=True))
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in cells) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([render(header), rule, *(render(r) for r in rows[1:])])


def fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


COLUMNS = [
    *("run", "photos", "owner faces", "proposals", "correct", "wrong", "recall", "precision"),
    *("decisions", "mixed groups", "wall s", "photos/s", "speed vs CLI", "CPU s", "peak MB"),
]


def main_table(rows: list[Row]) -> str:
    cli = rows[0]
    cli_rate = cli.photos / cli.measured.wall_s if cli.score else 0.0
    lines = []
    for row in rows:
        m = row.measured
        rate = row.photos / m.wall_s
        timing = [
            f"{m.wall_s:.1f}",
            f"{rate:.2f}",
            f"{rate / cli_rate:.2f}x" if cli_rate else "n/a",
        ]
        timing += [f"{m.cpu_s:.0f}", f"{m.peak_rss_mb:.0f}"]
        s = row.score
        if s is None:
            lines.append([row.name, str(row.photos), "failed", row.failure, *[""] * 6, *timing])
            continue
        groups = [
            "" if s.decisions is None else str(s.decisions),
            "" if s.mixed is None else str(s.mixed),
        ]
        counts = [str(s.expected), str(s.proposals), str(s.correct), str(s.wrong)]
        lines.append(
            [row.name, str(row.photos), *counts, fmt(s.recall), fmt(s.precision), *groups, *timing]
        )
    return render_table(COLUMNS, lines)


def group_table(result: SetResult, score: Score) -> tuple[str, list[str]]:
    """Ours per owner's demographic group: how often its owners are found, how often what is
    proposed as one of them is someone else; the groups above the flag line."""
    owners: dict[str, set[str]] = defaultdict(set)
    for person, ident in result.truth["identities"].items():
        if ident["owner"]:
            owners[ident["group"]].add(person)
    group_of = {p: g for g, ps in owners.items() for p in ps}
    faces = Counter(f.group for fs in result.faces.values() for f in fs if f.owner)
    found = Counter(v.face.group for v in score.verdicts if v.correct and v.face)
    proposed = Counter(group_of[v.proposal.person] for v in score.verdicts)
    wrong = Counter(group_of[v.proposal.person] for v in score.verdicts if not v.correct)
    same = Counter(
        group_of[v.proposal.person]
        for v in score.verdicts
        if not v.correct and v.face and v.face.group == group_of[v.proposal.person]
    )
    behind: dict[str, set[str]] = defaultdict(set)
    for v in score.verdicts:
        if not v.correct and v.face:
            behind[group_of[v.proposal.person]].add(v.face.person)
    header = ["owner's group", "owners", "owner faces", "found", "recall", "proposed", "wrong"]
    header += ["wrong share", "wrong on same group", "strangers behind wrong"]
    lines, flagged = [], []
    for group in sorted(owners):
        share = wrong[group] / proposed[group] if proposed[group] else math.nan
        flag = result.name == "diverse" and share > WRONG_SHARE_FLAG
        if flag:
            flagged.append(f"{group} ({share:.0%} wrong)")
        recall = found[group] / faces[group] if faces[group] else math.nan
        lines.append(
            [
                group,
                str(len(owners[group])),
                str(faces[group]),
                str(found[group]),
                fmt(recall),
                str(proposed[group]),
                str(wrong[group]),
                ("n/a" if math.isnan(share) else f"{share:.0%}") + (" FLAG" if flag else ""),
                str(same[group]),
                str(len(behind[group])),
            ]
        )
    return render_table(header, lines), flagged


def recall_by(result: SetResult, score: Score) -> list[str]:
    """Ours' recall of owner faces by what makes a photo hard, one line per kind of difficulty."""
    missed = {(m["photo"], tuple(m["box"])) for m in score.missed}
    owner_faces = [
        (name, f)
        for name in result.faces
        for f in result.truth["photos"][name]["faces"]
        if f["owner"]
    ]

    def bucket(width: int) -> str:
        edges = (0, 50, 70, 100, 150)
        low = max(e for e in edges if e <= width)
        high = next((e for e in edges if e > width), None)
        return f"{low}-{high - 1} px" if high else f"{low}+ px"

    def natural(label: str) -> tuple[int, str]:
        """Labels in numeric order when they start with a number (widths, tilts)."""
        number = re.match(r"\d+", label)
        return (int(number.group()) if number else 0, label)

    keys: dict[str, Callable[[str, dict], str]] = {
        "kind": lambda n, f: result.truth["photos"][n]["kind"],
        "effect": lambda n, f: result.truth["photos"][n]["effect"],
        "tilt": lambda n, f: f"{abs(f['tilt'])} deg",
        "face width": lambda n, f: bucket(f["width"]),
    }
    lines = []
    for label, key in keys.items():
        total: Counter[str] = Counter()
        hit: Counter[str] = Counter()
        for name, f in owner_faces:
            k = key(name, f)
            total[k] += 1
            hit[k] += (name, tuple(f["box"])) not in missed
        parts = [f"{k} {hit[k] / total[k]:.2f} ({total[k]})" for k in sorted(total, key=natural)]
        lines.append(f"  recall by {label}: " + ", ".join(parts))
    return lines


def write_report(result: SetResult) -> Path:
    """Each run's command, timing and the items it missed or invented, for a look afterwards."""
    report = []
    for row in result.rows:
        entry: dict[str, object] = {"run": row.name, "argv": row.argv, "failure": row.failure}
        entry.update(wall_s=row.measured.wall_s, cpu_s=row.measured.cpu_s)
        entry["peak_rss_mb"] = row.measured.peak_rss_mb
        if row.score is not None:
            entry["missed"], entry["false"] = row.score.missed, row.score.false
        report.append(entry)
    path = result.set_dir / "results" / "report.json"
    path.write_text(json.dumps(report, indent=1))
    return path


def beside_cli(rows: list[Row]) -> str:
    """Which owner photos each tool misses, photo for photo. A set harder or easier than another
    for the CLI says little about ours, unless ours finds what the CLI finds: then the CLI's recall
    on any set is a floor for ours (short of the faces ours gives up to stay precise)."""
    scores = {row.name: row.score for row in rows if row.score is not None}
    cli, ours = scores.get("face_recognition CLI (photo level)"), scores.get("ours (photo level)")
    if cli is None or ours is None:
        return ""
    cli_missed = {(m["photo"], m["person"]) for m in cli.missed}
    ours_missed = {(m["photo"], m["person"]) for m in ours.missed}
    cli_found = cli.expected - len(cli_missed)
    lost = sorted(ours_missed - cli_missed)
    line = (
        f"  beside the CLI (photo level): ours finds {cli_found - len(lost)} of the {cli_found}"
        f" owner photos the CLI finds, and {len(cli_missed - ours_missed)} of the"
        f" {len(cli_missed)} it misses"
    )
    if lost:
        line += "; lost by ours only: " + ", ".join(f"{p} ({person})" for p, person in lost)
    return line


def print_set(result: SetResult) -> list[str]:
    """Both tables of one set; returns the flagged groups."""
    truth = result.truth
    total_faces = sum(len(fs) for fs in result.faces.values())
    print(f"\n== {result.name}: {len(result.faces)} photos, {total_faces} faces in truth", end="")
    if result.faces_found is not None:
        print(f", {result.faces_found} found by ours", end="")
    owners = sum(i["owner"] for i in truth["identities"].values())
    print(f"; {owners} owners of {len(truth['identities'])} people")
    print(main_table(result.rows))
    print("  photo-level rows count (photo, owner) pairs in the owner faces column")
    unread = sum(not CLI_READS.match(name) for name in result.faces)
    if unread:
        print(
            f"  the CLI reads JPEG and PNG only ({len(result.faces) - unread} of the"
            f" {len(result.faces)} photos; speed is per photo read) and ignores EXIF orientation,"
            " so it sees a turned photo's faces sideways and encodes fewer of them"
        )
    if result.startup:
        print(result.startup)
    if line := beside_cli(result.rows):
        print(line)
    ours = next((r for r in result.rows if r.name == "ours (face level)" and r.score), None)
    if ours is None or ours.score is None:
        return []
    table, flagged = group_table(result, ours.score)
    print(f"\nours per owner's group ({result.name}):")
    print(table)
    for line in recall_by(result, ours.score):
        print(line)
    if result.name == "diverse":
        print(f"  groups above {WRONG_SHARE_FLAG:.0%} wrong: {', '.join(flagged) or 'none'}")
    print(f"  missed and false: {write_report(result)}")
    return flagged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sets_argument(parser)
    parser.add_argument("--workers", type=int, default=2, help="processes for every tool")
    parser.add_argument("--limit", type=int, help="only this many photos per set (a trial run)")
    args = parser.parse_args()
    args.sets = chosen_sets(parser, args.sets)
    started = time.perf_counter()
    ours = scan_available()
    results = [bench_set(name, args.workers, args.limit, ours) for name in args.sets]
    for result in results:
        print_set(result)
    if not ours:
        print("ours: `photo-removal scan` is not available yet, only the CLI ran")
    script = os.path.relpath(Path(sys.argv[0]).resolve())
    print(f"\ncommand: {shlex.join(['uv', 'run', 'python', script, *sys.argv[1:]])}")
    print(f"N = {args.workers} processes per run; machine: {machine()}")
    print(f"bench: {time.perf_counter() - started:.0f} s in all")
    return 0 if ours and all(row.score for r in results for row in r.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
