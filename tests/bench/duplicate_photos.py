"""What the photos' fingerprints change: the rule with and without them, on the bench sets.

A look-alike group of `group_min` or more photos whose median does not stand out is judged a
stranger who recurs, and none of it is proposed (service/faces/decision.py, `_doubtful_groups`).
An export often holds one photo twice: the camera's file and the copy saved back from a chat
(smaller, re-compressed), or the same file under "name (1).jpg". Without the photos'
fingerprints (images.photo_print), two photos of the owner count as three faces, and the owner's
own group is judged a recurring stranger.

This replays the shipped rule on recall_audit.py's caches (built on first use) without the
fingerprints and with them, every owner decided together, then each owner alone (a friend in
no family circle). It also says how many photos each set holds twice and how many of those the
fingerprints find (the truth marks them).

Run: uv run python tests/bench/duplicate_photos.py [platform diverse export export-2 export-3]
models/EXPERIMENTS.md, "The export sets", has the figures.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from platform_set import add_sets_argument, chosen_sets
from recall_audit import decided, line, load, source

from service.faces.decision import COPY_BITS, DecisionRule


def copies_found(ex: dict, truth: dict) -> str:
    """How many of the truth's copies the fingerprints find, and any other pair they join."""
    prints = {k: np.frombuffer(v, np.uint8) for k, v in ex["prints"].items()}
    names = sorted(prints)
    joined = {
        (a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if np.unpackbits(prints[a] ^ prints[b]).sum() <= COPY_BITS
    }
    marked = {
        tuple(sorted((name, p["copy_of"])))
        for name, p in truth["photos"].items()
        if p.get("copy_of") and name in prints and p["copy_of"] in prints
    }
    return (
        f"{len(marked)} photos held twice; the fingerprints join {len(joined & marked)} of them "
        f"and {len(joined - marked)} other pairs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sets_argument(parser)
    parser.add_argument("--workers", type=int, default=2, help="to build the audit cache")
    args = parser.parse_args()
    rule = DecisionRule.load()
    for name in chosen_sets(parser, args.sets):
        truth, ex = load(name, args.workers)
        src = source(ex, truth)
        print(f"\n== {name}: {copies_found(ex, truth)}")
        for alone in (False, True):
            how = "each owner alone" if alone else "together"
            before = replace(src, prints=None)
            print(line(f"without fingerprints, {how}", decided(before, truth, rule, alone=alone)))
            print(line(f"with them (shipped), {how}", decided(src, truth, rule, alone=alone)))


if __name__ == "__main__":
    main()
