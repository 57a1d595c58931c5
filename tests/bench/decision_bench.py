"""`make bench`: the cost of deciding on a whole source (Z-norm, competitors, groups) as it grows.

The faces are real encodings of the diverse set's photos (scanned once), each copied with a small
perturbation until the source holds N faces: the crowd, the owners and the recurring strangers
keep their proportions, so the number of near faces and groups grows as in a real export.
Each face is in a photo of its own, with a fingerprint of its own: no photo is held twice, so the
group test compares every face of a group with the photos already counted (the most it does).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from service.faces.decision import PRINT_BYTES, Cohort, DecisionRule, decide  # noqa: E402
from service.faces.matching import Gallery, Thresholds  # noqa: E402
from service.faces.references import encode_references  # noqa: E402
from service.faces.scanner import Scanner  # noqa: E402
from service.ingest.sources import iter_photos  # noqa: E402

SET = ROOT / ".bench" / "diverse"
SIZES = (1_000, 10_000, 50_000)


def scanned() -> tuple[np.ndarray, Gallery]:
    """Every face of the diverse set with the gallery of its owners."""
    if not SET.exists():
        raise SystemExit(f"{SET} is missing: run tests/bench/platform_set.py diverse first")
    with Scanner(None, Thresholds.load(), workers=2) as scanner:
        refs = encode_references(SET / "references", scanner)
        scanner.gallery = Gallery({n: np.array(c) for n, c in refs.people.items()})
        faces = [f.encoding for _, r in scanner.scan(iter_photos(SET / "photos")) for f in r.faces]
    return np.array(faces, dtype=np.float32), scanner.gallery


def grown(faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n faces: the set's faces, then copies moved by about 0.15 (another photo, same person)."""
    picks = rng.integers(0, len(faces), n)
    noise = rng.normal(0.0, 0.15 / np.sqrt(128), (n, 128)).astype(np.float32)
    noise[: len(faces)] = 0
    picks[: len(faces)] = np.arange(min(n, len(faces)))
    return faces[picks] + noise


def fingerprints(n: int) -> list[bytes | None]:
    """A fingerprint for each photo, at random (another photo's differs in about 128 bits)."""
    rng = np.random.default_rng(n)  # its own: the faces drawn stay those of earlier runs
    return [bytes(row) for row in rng.integers(0, 256, (n, PRINT_BYTES), dtype=np.uint8)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args()
    faces, gallery = scanned()
    rule = DecisionRule.load()
    rng = np.random.default_rng(1)
    print(f"{len(faces)} real faces, {len(gallery)} owners; rule {rule}")
    print("| faces | near faces | proposals | groups | decide s | s per 10,000 faces | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        encodings = grown(faces, n, rng)
        cohort = Cohort(encodings, gallery.distances(encodings))
        near = int((cohort.distances.min(axis=1) <= rule.possible).sum())
        tracemalloc.start()
        start = time.perf_counter()
        photos = [f"photo {i}" for i in range(n)]
        proposals = decide(
            cohort, gallery.names, gallery.centres(), rule, photos, prints=fingerprints(n)
        )
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        groups = len({(p.person, p.group) for p in proposals})
        print(
            f"| {n:,} | {near:,} | {len(proposals):,} | {groups:,} | {elapsed:.2f} "
            f"| {elapsed / n * 10_000:.2f} | {peak:.0f} |"
        )
    print("command: uv run python tests/bench/decision_bench.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
