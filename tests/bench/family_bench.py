"""Each owner alone, families of 2-4, or every owner at once: the same faces decided with
different galleries, to show what deciding a family circle's members together costs or gains.

It replays recall_audit.py's faces, found by HOG's whole-photo pass (the engine until stop 32).
For the shipped engine's faces, each owner alone against all together is
`rule_replay.py --alone`, which `make bench` runs.

Run: uv run python tests/bench/family_bench.py [platform diverse] [--draws 3] [--workers 2]
(seconds: it replays decide() on recall_audit.py's cache in .bench/<set>/audit/; on a fresh clone
the first run builds that cache, about 15 min on 2 cores).

A friend who is in no family circle is scanned for one owner alone; a circle's scan decides with
every member in one gallery (service/scan.py `_decide`), each face going to its nearest member.
Every mode decides each set's faces (the production detection pass at the shipped floor) with
the shipped rule:
- each owner alone: decide() once per owner, with that owner's distances and centre only;
- families of 2-4: the owners cut into groups of 2-4 (sizes seeded), each group decided together;
  the first draw keeps the owners in name order, the later draws shuffle them (seeded);
- all owners at once: one gallery of every owner of the set (what matching_bench.py's scan and
  recall_audit.py's "shipped rule" measure).

Scoring is the benchmark's, face level: a proposal is right when it lies on a face of the owner it
names; recall is over all the owners' faces. Owners are reported in models/calibrate.py's folds (A,
where the rule's z threshold was chosen; B, held out). "worst" is the largest wrong share of an
owner's demographic group; "mixed" counts look-alike groups that mix an owner's faces with someone
else's; "decisions" the groups the owners are asked to decide.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from matching_bench import fmt, render_table
from platform_set import SEED, add_sets_argument, chosen_sets
from recall_audit import (
    Result,
    Source,
    check_against_decide,
    distances_to,
    evaluate,
    load,
    owner_folds,
    source,
    summarise,
    trace_decide,
)

from service.faces.decision import DecisionRule

FAMILY_SIZES = (2, 3, 4)
FOLDS = ("A", "B", "all")


def families(owners: list[str], draw: int) -> list[list[str]]:
    """Owners cut into consecutive groups of 2-4, sizes seeded; draw 0 in name order, the others
    shuffled. No one is left alone: the last group takes whatever size remains."""
    rng = random.Random(f"{SEED}-families-{draw}")
    order = sorted(owners)
    if draw:
        rng.shuffle(order)
    out = []
    while order:
        left = len(order)
        fits = [s for s in FAMILY_SIZES if s == left or left - s >= min(FAMILY_SIZES)]
        size = rng.choice(fits) if fits else left
        out.append(order[:size])
        order = order[size:]
    return out


def decided(src: Source, truth: dict, rule: DecisionRule, galleries: list[list[str]]) -> Result:
    """Every gallery decided on the whole source, as a scan for those owners would; checked
    against decide() itself, and scored together (each owner is in one gallery)."""
    results = []
    for names in galleries:
        one = replace(src, names=names)
        d = distances_to(one.encodings, names, one.refs, rule.references)
        tr = trace_decide(one, rule, distances=d)
        check_against_decide(one, rule, tr)
        results.append(evaluate(one, truth, tr, d_all=d, possible=rule.possible))
    return Result.merged(results)


def modes(owners: list[str], draws: int) -> dict[str, list[list[str]]]:
    out = {"each owner alone": [[o] for o in sorted(owners)]}
    for draw in range(draws):
        how = "name order" if draw == 0 else f"shuffle {draw}"
        out[f"families of 2-4 ({how})"] = families(owners, draw)
    out["all owners at once"] = [sorted(owners)]
    return out


def mode_table(results: dict[str, Result]) -> str:
    header = ["mode", "fold", "proposals", "wrong", "precision", "recall", "worst group wrong"]
    header += ["mixed groups", "decisions"]
    lines = []
    for mode, res in results.items():
        s = summarise(res)
        for fold in FOLDS:
            x = s[fold]
            share, group = x["worst"]
            lines.append(
                [
                    mode,
                    fold,
                    str(x["proposals"]),
                    str(x["wrong"]),
                    fmt(x["precision"]),
                    fmt(x["recall"]),
                    f"{share:.0%}" + (f" {group}" if group else ""),
                    str(x["mixed"]),
                    str(x["decisions"]),
                ]
            )
    return render_table(header, lines)


def owner_table(truth: dict, results: dict[str, Result]) -> str:
    """The owners whose faces found or wrong proposals differ between the modes."""
    folds = owner_folds(truth)
    faces = Counter(f["person"] for p in truth["photos"].values() for f in p["faces"] if f["owner"])
    wrong = {mode: Counter(w[0] for w in res.wrong_list) for mode, res in results.items()}
    lines = []
    for owner in sorted(faces):
        cells = [f"{res.found[owner]} / {wrong[mode][owner]}" for mode, res in results.items()]
        if len(set(cells)) > 1:
            group = truth["identities"][owner]["group"]
            lines.append([owner, group, folds[owner], str(faces[owner]), *cells])
    if not lines:
        return "  every owner: the same faces found and the same wrong proposals in every mode"
    header = ["owner (found / wrong)", "group", "fold", "faces", *results]
    return render_table(header, lines)


def wrong_lines(results: dict[str, Result]) -> str:
    """Every wrong proposal once, with the modes that made it."""
    modes_of: dict[tuple, list[str]] = defaultdict(list)
    for mode, res in results.items():
        for wrong in res.wrong_list:
            modes_of[wrong].append(mode)
    if not modes_of:
        return "  no wrong proposal in any mode"
    return "\n".join(
        f"  wrong: {person} proposed on {who or 'no face'} ({photo}, distance {distance}) in "
        + ", ".join(modes_of[(person, who, photo, distance)])
        for person, who, photo, distance in sorted(modes_of, key=str)
    )


def bench_set(name: str, rule: DecisionRule, draws: int, workers: int) -> None:
    truth, ex = load(name, workers)
    src = source(ex, truth)
    galleries = modes(src.names, draws)
    results = {mode: decided(src, truth, rule, g) for mode, g in galleries.items()}
    owner_faces = sum(f["owner"] for p in truth["photos"].values() for f in p["faces"])
    faces = len(src.encodings)
    print(f"\n== {name}: {len(src.names)} owners, {owner_faces} owner faces, {faces} faces found")
    print(mode_table(results))
    print(f"\nowners whose result differs ({name}):")
    print(owner_table(truth, results))
    print(wrong_lines(results))
    for mode, g in galleries.items():
        if mode.startswith("families"):
            print(f"  {mode}: " + " ".join("[" + ", ".join(f) + "]" for f in g))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sets_argument(parser)
    parser.add_argument("--draws", type=int, default=3, help="draws of families of 2-4")
    parser.add_argument("--workers", type=int, default=2, help="to build the cache if missing")
    args = parser.parse_args()
    started = time.perf_counter()
    rule = DecisionRule.load()
    for name in chosen_sets(parser, args.sets):
        bench_set(name, rule, args.draws, args.workers)
    script = os.path.relpath(Path(sys.argv[0]).resolve())
    print(f"\ncommand: {shlex.join(['uv', 'run', 'python', script, *sys.argv[1:]])}")
    print(f"family bench: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
