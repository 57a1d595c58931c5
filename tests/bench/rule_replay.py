"""The decision rule replayed on a set's scanned faces: what `photo-removal scan` proposes, scored
as matching_bench.py scores it, for the shipped rule and for any change of its parameters, in
seconds.

Run: uv run python tests/bench/rule_replay.py [platform diverse ...] [--set z_max=-2.25 ...]
     [--alone] [--workers 2]

The first run on a set scans it as the scan command does (the shipped engine and references,
every face's encoding and photo fingerprint) and caches what it found in
.bench/<set>/replay/; the cache is keyed by the engine's source and model files, so a change of
how faces are found or encoded scans again. Every later run only decides: ScanReport.decide, the
scan command's own last step, with the rule changed as --set says.

--alone decides every owner on their own as well (a friend scanned for one owner, not a family
circle), the way family_bench.py does on the audit's older faces.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from collections import Counter
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from matching_bench import Score, fmt, parse_ours, render_table, score_faces, truth_faces
from platform_set import PROJECT_ROOT, add_sets_argument, build, chosen_sets

from service.faces.decision import DecisionRule
from service.faces.matching import Gallery, Thresholds
from service.faces.references import encode_references
from service.faces.scanner import FoundFace, PhotoScan, Scanner
from service.ingest.items import PhotoItem
from service.ingest.sources import iter_photos
from service.scan_command import ScanReport

ROOT = Path(__file__).resolve().parents[2]
# What a scan's faces depend on: a change to any of these scans the set again.
ENGINE_SOURCES = (
    *("engine.py", "yunet.py", "sface.py", "mesh.py", "encoder.py", "dlibnet.py", "images.py"),
    *("cnn_detector.py", "jitter.py", "onnxrun.py", "scanner.py"),
)


def engine_key() -> str:
    h = hashlib.sha256()
    for name in ENGINE_SOURCES:
        h.update((ROOT / "service" / "faces" / name).read_bytes())
    h.update((ROOT / "models" / "manifest.json").read_bytes())
    h.update(str(Thresholds.load().detector_min_score).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- the scan, cached


def scanned(name: str, workers: int) -> tuple[dict, dict]:
    """The set's truth, and its faces as the scan found them (from the cache if it is current)."""
    set_dir = PROJECT_ROOT / ".bench" / name
    truth = build(name, set_dir)
    cache = set_dir / "replay" / f"scan_{engine_key()}.npz"
    if not cache.exists():
        print(f"scanning {name} once for the replay ({len(truth['photos'])} photos) ...")
        cache.parent.mkdir(exist_ok=True)
        _scan(set_dir, workers, cache)
    with np.load(cache) as z:
        meta = json.loads(str(z["meta"]))
        faces = {
            "encodings": z["encodings"],
            "prints": z["prints"],
            "references": {n: z[f"ref_{i}"] for i, n in enumerate(meta["people"])},
            **meta,
        }
    return truth, faces


def _scan(set_dir: Path, workers: int, cache: Path) -> None:
    photos, boxes, codes, prints = [], [], [], []
    with Scanner(None, Thresholds.load(), workers=workers) as scanner:
        refs = encode_references(set_dir / "references", scanner)
        people = {n: np.array(c) for n, c in refs.people.items()}
        scanner.gallery = Gallery(people)
        for item, result in scanner.scan(iter_photos(set_dir / "photos")):
            for face in result.faces:
                photos.append(item.key)
                boxes.append(list(face.box))
                codes.append(face.encoding)
                prints.append(result.fingerprint or bytes(32))
    names = sorted(people)
    meta = {"people": names, "photos": photos, "boxes": boxes}
    arrays: dict[str, Any] = {f"ref_{i}": people[n] for i, n in enumerate(names)}
    arrays["encodings"] = np.array(codes, np.float32).reshape(-1, 128)
    arrays["prints"] = np.frombuffer(b"".join(prints), np.uint8).reshape(-1, 32)
    np.savez(cache, meta=np.array(json.dumps(meta)), **arrays)


# ---------------------------------------------------------------- deciding again


def decided(faces: dict, rule: DecisionRule, people: list[str] | None = None) -> dict:
    """The scan command's JSON for these faces, decided by `rule` for `people` (all by default)."""
    refs = faces["references"]
    gallery = Gallery({n: refs[n] for n in people or refs}, over=rule.references)
    encodings = faces["encodings"]
    distances = gallery.distances(encodings)
    report = ScanReport()
    # The faces, a photo at a time, through the scan command's own bookkeeping (ScanReport.add).
    rows = range(len(encodings))
    for photo, group in itertools.groupby(rows, key=lambda i: faces["photos"][i]):
        at = list(group)
        found = tuple(FoundFace(tuple(faces["boxes"][i]), encodings[i], distances[i]) for i in at)
        fingerprint = faces["prints"][at[0]]  # all zeros: the scan had none
        scan = PhotoScan(
            faces=found, fingerprint=fingerprint.tobytes() if fingerprint.any() else b""
        )
        report.add(PhotoItem(photo, read=bytes), scan)
    report.decide(gallery, rule)
    return report.as_json()


def scored(truth: dict, doc: dict, owners: set[str] | None = None) -> Score:
    """Face level, as matching_bench.py scores the scan; over `owners`' faces only, if given."""
    faces = truth_faces(truth, truth["photos"])
    if owners is not None:
        faces = {
            photo: [f if f.person in owners else replace(f, owner=False) for f in fs]
            for photo, fs in faces.items()
        }
    return score_faces(parse_ours(json.dumps(doc)), faces, truth)


def alone(truth: dict, faces: dict, rule: DecisionRule) -> Score:
    """Every owner decided on their own, the scores summed (decisions and mixed groups too)."""
    total = Score(0, 0, 0, 0, 0, 0)
    for person in sorted(faces["references"]):
        s = scored(truth, decided(faces, rule, [person]), {person})
        total.expected += s.expected
        total.proposals += s.proposals
        total.correct += s.correct
        total.found += s.found
        total.decisions = (total.decisions or 0) + (s.decisions or 0)
        total.mixed = (total.mixed or 0) + (s.mixed or 0)
        total.false += s.false
        total.missed += s.missed
        total.verdicts += s.verdicts
    return total


def wrong_by_group(truth: dict, score: Score) -> str:
    """Wrong / proposed by the owner's demographic group, worst first."""
    group = {f["person"]: f["group"] for p in truth["photos"].values() for f in p["faces"]}
    proposed = Counter(group.get(v.proposal.person, "?") for v in score.verdicts)
    wrong = Counter(group.get(v.proposal.person, "?") for v in score.verdicts if not v.correct)
    order = sorted(proposed, key=lambda g: -wrong[g] / proposed[g])
    return ", ".join(f"{g} {wrong[g]}/{proposed[g]}" for g in order if wrong[g])


def parse_changes(pairs: list[str]) -> dict:
    """`name=value` pairs of DecisionRule fields, typed as the field's default."""
    types = {f.name: type(getattr(DecisionRule(), f.name)) for f in fields(DecisionRule)}
    changes = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"--set: no rule parameter {key!r} (one of {', '.join(types)})")
        changes[key] = types[key](value)
    return changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sets_argument(parser)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--alone", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--why", action="store_true", help="list every wrong and missed face")
    args = parser.parse_args()
    shipped = DecisionRule.load()
    changes = parse_changes(args.set)
    rules = {"shipped": shipped} | ({"changed": replace(shipped, **changes)} if changes else {})
    if changes:
        print("changed: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
    header = ["set", "rule", "mode", "recall", "precision", "proposals", "wrong", "decisions"]
    header += ["mixed", "wrong by owner's group"]
    lines = []
    for name in chosen_sets(parser, args.sets):
        truth, faces = scanned(name, args.workers)
        for tag, rule in rules.items():
            modes = {"together": scored(truth, decided(faces, rule))}
            if args.alone:
                modes["each alone"] = alone(truth, faces, rule)
            for mode, s in modes.items():
                counts = (s.proposals, s.wrong, s.decisions, s.mixed)
                by_group = wrong_by_group(truth, s)
                lines.append(
                    [name, tag, mode, fmt(s.recall), fmt(s.precision), *map(str, counts), by_group]
                )
                if args.why:
                    for f in s.false:
                        print(f"  {name} {tag} {mode} wrong: {f}")
                    for m in s.missed:
                        print(f"  {name} {tag} {mode} missed: {m}")
    print(render_table(header, lines))


if __name__ == "__main__":
    main()
