"""Calibrate the strong/possible distance bands on the labeled photos of ../shared/faces.

Run: uv run python models/calibrate.py [--write]
Every labeled photo is encoded twice, as a reference (10 jitters, as enrollment does) and as a
scanned photo (1 jitter, as scans do). Genuine pairs are a reference and a scanned photo of the same
person (never the same file); impostor pairs are of different people. It prints the distance
distributions and the error rates at each candidate threshold; --write updates thresholds.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import product
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.faces.engine import REFERENCE_JITTERS, FaceEngine
from service.faces.images import decode_photo
from service.faces.modelfiles import verified_model_files

FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"
SETS = ("dev", "dev-bbt")
STRONG_MAX_FALSE_ACCEPT = 0.0  # strong: no impostor pair at all on the calibration set
POSSIBLE = 0.6  # dlib's published operating point (99.38% on LFW); the owner reviews this band


def labeled_photos() -> dict[str, list[Path]]:
    people: dict[str, list[Path]] = {}
    for set_name in SETS:
        for folder in sorted((FACES / set_name).iterdir()):
            if folder.is_dir() and not folder.name.startswith("_"):
                people[folder.name] = sorted(p for p in folder.iterdir() if p.is_file())
    return people


def encode(engine: FaceEngine, path: Path, jitters: int) -> np.ndarray | None:
    faces = engine.faces(decode_photo(path.read_bytes(), max_side=1600), jitters=jitters)
    if len(faces) != 1:
        return None
    return faces[0].encoding


def distances(engine: FaceEngine) -> tuple[list[float], list[float], int]:
    refs, probes = [], []
    skipped = 0
    for person, paths in labeled_photos().items():
        for path in paths:
            ref = encode(engine, path, REFERENCE_JITTERS)
            probe = encode(engine, path, 1)
            if ref is None or probe is None:
                skipped += 1
                continue
            refs.append((person, path, ref))
            probes.append((person, path, probe))
    genuine, impostor = [], []
    for (p1, f1, r), (p2, f2, q) in product(refs, probes):
        if f1 == f2:
            continue
        d = float(np.linalg.norm(r - q))
        (genuine if p1 == p2 else impostor).append(d)
    return genuine, impostor, skipped


def report(genuine: list[float], impostor: list[float], skipped: int) -> dict[str, object]:
    g, i = np.array(genuine), np.array(impostor)
    strong = float(np.floor((i.min() - 0.01) * 100) / 100)
    rows = []
    for t in (0.40, 0.45, 0.50, strong, 0.55, 0.60):
        rows.append(
            {
                "threshold": round(t, 2),
                "true_accept": round(float((g <= t).mean()), 4),
                "false_accept": round(float((i <= t).mean()), 5),
            }
        )
    return {
        "genuine_pairs": len(g),
        "impostor_pairs": len(i),
        "photos_without_one_face": skipped,
        "genuine_distance": {
            "min": round(float(g.min()), 3),
            "median": round(float(np.median(g)), 3),
            "p95": round(float(np.percentile(g, 95)), 3),
            "max": round(float(g.max()), 3),
        },
        "impostor_distance": {
            "min": round(float(i.min()), 3),
            "p1": round(float(np.percentile(i, 1)), 3),
            "median": round(float(np.median(i)), 3),
        },
        "strong_candidate": strong,
        "rates": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    engine = FaceEngine(verified_model_files(), min_score=0.0)
    figures = report(*distances(engine))
    print(json.dumps(figures, indent=2))
    if args.write:
        path = Path(__file__).with_name("thresholds.json")
        data = json.loads(path.read_text())
        data["calibration"] = figures
        path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
