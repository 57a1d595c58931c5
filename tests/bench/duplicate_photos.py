"""A probe, not a product path: should the group test count a duplicated photo once?

A look-alike group of `group_min` or more faces whose median does not stand out is judged a
stranger who recurs, and none of it is proposed (service/faces/decision.py, `_doubtful_groups`).
An export often holds one photo twice: the camera's file and the copy saved back from a chat
(smaller, re-compressed), or the same file under "name (1).jpg". Then two photos of the owner
count as three faces, and the owner's own group is judged a recurring stranger.

This replays the shipped rule on recall_audit.py's caches (built on first use), with the group
test counting the faces of duplicated photos once: photos whose difference hashes (16x16,
upright) differ in at most HASH_BITS of 256 bits are one photo, and each face of the later one is
the copy of its nearest face in the earlier one when within FACE_GAP. Every owner decided
together, then each owner alone (a friend in no family circle).

Run: uv run python tests/bench/duplicate_photos.py [platform diverse export export-2 export-3]
models/EXPERIMENTS.md, "The export sets", has the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from platform_set import PROJECT_ROOT, add_sets_argument, chosen_sets
from recall_audit import Source, decided, line, load, source

from service.faces import decision as dec
from service.faces.decision import DecisionRule
from service.faces.images import decode_photo

HASH_BITS = 12  # copies differ in 0-7 bits on the export sets, other photos in 16 or more
FACE_GAP = 0.4  # a chat copy moves a face's encoding by up to 0.37 on them (copy_distance: 0.2)


def difference_hash(path: Path) -> np.ndarray:
    photo = decode_photo(path.read_bytes(), max_side=64)
    grey = Image.fromarray(photo.rgb).convert("L").resize((17, 16), Image.Resampling.BILINEAR)
    g = np.asarray(grey, np.int16)
    return (g[:, 1:] > g[:, :-1]).ravel()


def copy_keys(src: Source, set_dir: Path) -> tuple[list[int], dict]:
    """For each face, the index of the face it is a copy of in a duplicated photo (or its own),
    and what was found: duplicated photos, the copies' encoding gaps, and the truth's copies."""
    photos = sorted(set(src.photo))
    hashes = {p: difference_hash(set_dir / "photos" / p) for p in photos}
    first: dict[str, str] = {}
    for n, p in enumerate(photos):
        same = [q for q in photos[:n] if (hashes[p] != hashes[q]).sum() <= HASH_BITS]
        first[p] = first[same[0]] if same else p
    keys: list[int] = []
    gaps = []
    for i, p in enumerate(src.photo):
        earlier = [j for j in range(i) if first[src.photo[j]] == first[p] and src.photo[j] != p]
        if not earlier:
            keys.append(i)
            continue
        j = min(earlier, key=lambda j: np.linalg.norm(src.encodings[i] - src.encodings[j]))
        gap = float(np.linalg.norm(src.encodings[i] - src.encodings[j]))
        gaps.append(gap)
        keys.append(keys[j] if gap <= FACE_GAP else i)
    truth = json.loads((set_dir / "truth.json").read_text())
    marked = sum(1 for v in truth["photos"].values() if v.get("copy_of"))
    found = {
        "duplicated photos": sum(1 for p in photos if first[p] != p),
        "marked as copies in the truth": marked,
        "largest encoding gap of a copy": round(max(gaps, default=0.0), 2),
    }
    return keys, found


@contextmanager
def duplicates_once(keys: list[int]) -> Iterator[None]:
    """The rule's group test, with the faces of duplicated photos counted once (the nearest)."""
    shipped = dec._doubtful_groups

    def doubtful(groups, d, mean, sd, rule, followed):  # type: ignore[no-untyped-def]
        members: dict[int, list[int]] = {}
        for i, g in groups.items():
            members.setdefault(g, []).append(i)
        judged = set()
        for g, faces in members.items():
            nearest: dict[int, int] = {}
            for i in faces:
                if keys[i] not in nearest or d[i] < d[nearest[keys[i]]]:
                    nearest[keys[i]] = i
            once = list(nearest.values())
            if (
                g != 0
                and len(once) >= rule.group_min
                and (np.median(d[once]) - mean) / sd > rule.z_max
                and not dec._mostly_followed(once, followed, d, rule)
            ):
                judged.add(g)
        return judged

    dec._doubtful_groups = doubtful
    try:
        yield
    finally:
        dec._doubtful_groups = shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sets_argument(parser)
    parser.add_argument("--workers", type=int, default=2, help="to build the audit cache")
    args = parser.parse_args()
    rule = DecisionRule.load()
    for name in chosen_sets(parser, args.sets):
        truth, ex = load(name, args.workers)
        src = source(ex, truth)
        keys, found = copy_keys(src, PROJECT_ROOT / ".bench" / name)
        print(f"\n== {name}: {found}")
        for alone in (False, True):
            how = "each owner alone" if alone else "together"
            print(line(f"shipped, {how}", decided(src, truth, rule, alone=alone)))
            with duplicates_once(keys):
                print(line(f"duplicates once, {how}", decided(src, truth, rule, alone=alone)))


if __name__ == "__main__":
    main()
