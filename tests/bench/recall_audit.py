"""Where recall is lost on the matching bench sets, per stage and per demographic group.

Run: uv run python tests/bench/recall_audit.py [platform diverse] [--workers 2] [--variants]
     [--simulated]
(the first run scans both sets, ~15 min on 2 busy cores; later runs read the cache in seconds).
--variants scores every change tried (rule operating point, detector floor, a second detection
pass, mean over references...) on the cached faces; --simulated adds models/calibrate.py's
simulated exports per fold, nearest reference against the mean over references.

Every photo of a set (built by platform_set.py into .bench/<set>/) is scanned once with the
engine's own steps, and what each step found is cached in .bench/<set>/audit/. The steps are
those of the engine until stop 32, which found faces with HOG's whole-photo pass (the engine's
finder "hog"): the rule's settings were read off them. The engine now finds faces with YuNet
(models/EXPERIMENTS.md, "YuNet finds the faces"), so these replays no longer equal
matching_bench.py's figures; they stay the place to weigh a change of the rule against the one
before.
- the production detection pass (scale as engine.FaceEngine._detect) down to a score of -0.6,
  so the detector floor can be moved afterwards without scanning again;
- an audit-only pass at 1.5 times the production scale, to see which missed faces a larger
  upsampling would reach (and what it costs);
- every detection's encoding, and the time of each step per photo.
The owners' references are encoded as the scan command does (10 jitters).

Then every owner face of the truth is followed through the decision rule (decision.py, with the
rule's steps re-run one by one here, so each face's first failing step is known):
not detected / too far from the owner (> possible) / nearer to another owner / a competitor
(a clear stranger nearer to it) / z-norm failed (and not rescued by query expansion) /
its look-alike group judged a recurring stranger / proposed.

Owners are reported in the two folds of models/calibrate.py (calib identities alternating within
their group; the people outside calib/ alternate the same way), so a choice made on one fold can
be confirmed on the other.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import json
import math
import multiprocessing
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from matching_bench import overlaps, render_table
from platform_set import PROJECT_ROOT, add_sets_argument, build, chosen_sets

from service.faces import decision as dec
from service.faces.decision import Cohort, DecisionRule
from service.faces.engine import CNN_CONFIRMS, INFORMATION_SIDE, UNSURE_ASKED, UNSURE_FLOOR
from service.faces.images import UnreadablePhoto, decode_photo, photo_print
from service.faces.matching import Gallery

AUDIT_FLOOR = -1.0  # detections are cached down to this score
CACHE_VERSION = 12  # 12: SFace's encodings, as the engine's
# multiple of the production detection scale, and whether a grainy photo gets its second look
VARIANTS = {"base": (1.0, True), "up15": (1.5, True), "one_look": (1.0, False)}
# With --cnn-scan: dlib's CNN detector (cnn_detector.py) over the whole photo from the production
# scale down, its first 4 levels (faces of ~40-70 px at the information scale) and its whole
# pyramid. ~9 times the HOG pass: cached apart.
CNN_VARIANTS = ("cnn_small", "cnn")
CNN_SMALL_LEVELS = 4
# The production pass's faces encoded as the references are: the mean over 10 jittered copies
JITTERED = "base_j10"
# ...and as the mean of the face's encoding and its mirror image's (test-time flipping)
MIRRORED = "base_mirror"
ENCODED_AGAIN = (JITTERED, MIRRORED)  # the production pass's detections, encoded another way


# ---------------------------------------------------------------- extraction (workers)

_engine = None
_cnn = None


def _start() -> None:
    global _engine, _cnn
    from service.faces.cnn_detector import CnnFaceDetector
    from service.faces.engine import FaceEngine
    from service.faces.modelfiles import verified_model_files

    _engine = FaceEngine(verified_model_files(), min_score=_production_floor(), finder="hog")
    _cnn = CnnFaceDetector()


def _cnn_passes(rgb: np.ndarray) -> dict:
    """The CNN's small-face levels, then the rest of its pyramid, each timed."""
    import dlib

    from service.faces.cnn_detector import pyramid
    from service.faces.engine import DETECTION_UPSCALE, INFORMATION_SIDE

    assert _cnn is not None
    h, w = rgb.shape[:2]
    scales = pyramid(DETECTION_UPSCALE * min(1.0, INFORMATION_SIDE / max(w, h)), side=min(h, w))
    t0 = time.perf_counter()
    small = _cnn.candidates(rgb, scales=scales[:CNN_SMALL_LEVELS], threshold=AUDIT_FLOOR)
    t_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    rest = _cnn.candidates(rgb, scales=scales[CNN_SMALL_LEVELS:], threshold=AUDIT_FLOOR)
    t_rest = time.perf_counter() - t0

    def rects(found):
        return [
            (
                dlib.rectangle(
                    max(0, round(d.left)),
                    max(0, round(d.top)),
                    min(w - 1, round(d.right)),
                    min(h - 1, round(d.bottom)),
                ),
                d.score,
            )
            for d in _cnn.suppress(found)
        ]

    return {
        "cnn_small": (rects(small), t_small),
        "cnn": (rects(small + rest), t_small + t_rest),
    }


def _chips(photo, detected: list) -> np.ndarray:
    """The aligned faces of `detected` (dlib rectangles and scores), as the engine cuts them."""
    assert _engine is not None
    return _engine._aligned(photo.rgb, [_engine._landmarks(photo.rgb, r) for r, _ in detected])


def _encode(chips: np.ndarray) -> np.ndarray:
    """The encodings of aligned faces, as the engine makes them, as float32 rows (none for a
    photo without faces)."""
    assert _engine is not None
    return np.asarray(_engine._embedded(chips), np.float32).reshape(-1, 128)


def _scan_one(path: str, cnn_scan: bool = False) -> dict:
    from service.faces.engine import DETECTION_UPSCALE, INFORMATION_SIDE, _original_box
    from service.faces.images import decode_photo

    assert _engine is not None
    data = Path(path).read_bytes()
    t0 = time.perf_counter()
    photo = decode_photo(data, max_side=INFORMATION_SIDE)
    t_decode = time.perf_counter() - t0
    from PIL import Image

    from service.faces.engine import _at_information_scale, grain

    out: dict = {"name": Path(path).name, "decode_s": t_decode, "shape": photo.rgb.shape[:2]}
    colour = Image.fromarray(photo.rgb)
    out["grain"] = grain(_at_information_scale(colour.convert("L")))
    passes = {}
    for variant, (mult, second_look) in VARIANTS.items():
        # HOG as the engine runs it (grainy photos' union judged at the production floor), its
        # detections kept down to the audit's floor; the CNN's opinion is cached apart (below).
        t0 = time.perf_counter()
        detected = _engine._hog(colour, DETECTION_UPSCALE * mult, second_look, AUDIT_FLOOR)
        passes[variant] = (detected, time.perf_counter() - t0)
    if cnn_scan:
        passes.update(_cnn_passes(photo.rgb))
    chips_of = {}
    for variant, (detected, t_detect) in passes.items():
        t0 = time.perf_counter()
        chips = chips_of[variant] = _chips(photo, detected)
        t_chips = time.perf_counter() - t0
        t0 = time.perf_counter()
        codes = _encode(chips)
        t_encode = time.perf_counter() - t0
        out[variant] = {
            "boxes": [list(_original_box(rect, photo)) for rect, _ in detected],
            "scores": [s for _, s in detected],
            "encodings": np.asarray(codes, np.float32).reshape(-1, 128),
            "detect_s": t_detect,
            "chips_s": t_chips,
            "encode_s": t_encode,
        }
    # The CNN's second opinion (engine._confirmed) on the production pass's unsure detections
    t0 = time.perf_counter()
    floor = _production_floor()
    out["base"]["confirm"] = [
        _engine._cnn.score_at(colour, (r.left(), r.top(), r.right() + 1, r.bottom() + 1))
        if s < floor
        else None
        for r, s in passes["base"][0]
    ]
    out["base"]["confirm_s"] = time.perf_counter() - t0
    from service.faces.jitter import jittered

    t0 = time.perf_counter()
    codes = [_encode(jittered(chip, 10)).mean(axis=0) for chip in chips_of["base"]]
    out[JITTERED] = {**out["base"], "encodings": np.asarray(codes, np.float32).reshape(-1, 128)}
    out[JITTERED]["encode_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    chips = chips_of["base"]
    codes = (out["base"]["encodings"] + _encode(chips[:, :, ::-1])) / 2
    out[MIRRORED] = {**out["base"], "encodings": np.asarray(codes, np.float32).reshape(-1, 128)}
    out[MIRRORED]["encode_s"] = out["base"]["encode_s"] + time.perf_counter() - t0
    return out


def _cached(key: str) -> bool:
    """Whether a key of a photo's entry is one of the cached passes."""
    return key in VARIANTS or key in CNN_VARIANTS or key in ENCODED_AGAIN


def _production_floor() -> float:
    from service.faces.matching import Thresholds

    return Thresholds.load().detector_min_score


def _reference(path: str) -> np.ndarray | None:
    from service.faces.engine import NotOneFace

    assert _engine is not None
    try:
        return _engine.reference(Path(path).read_bytes())[1].encoding
    except NotOneFace:
        return None


def extract(set_dir: Path, truth: dict, workers: int, cnn_scan: bool = False) -> dict:
    """Every photo's detections per variant and every owner's references, cached. Two runs that
    need the same cache (this audit and a probe reading it, say) build it once: the second
    waits for the first."""
    tag = "_cnn_scan" if cnn_scan else ""
    cache = set_dir / "audit" / f"extract_v{CACHE_VERSION}{tag}.npz"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        return _extracted(set_dir, truth, workers, cnn_scan, cache)


def _extracted(set_dir: Path, truth: dict, workers: int, cnn_scan: bool, cache: Path) -> dict:
    meta_file = cache.with_suffix(".json")
    if cache.exists() and meta_file.exists():
        meta = json.loads(meta_file.read_text())
        arrays = np.load(cache)
        return _unpack(meta, arrays)
    names = sorted(truth["photos"])
    refs = {
        p: sorted((set_dir / "references" / p).iterdir())
        for p, ident in truth["identities"].items()
        if ident["owner"]
    }
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    ctx = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with ctx.Pool(workers, initializer=_start) as pool:
        scan = functools.partial(_scan_one, cnn_scan=cnn_scan)
        photos = pool.map(scan, [str(set_dir / "photos" / n) for n in names], chunksize=1)
        ref_paths = [(p, path) for p, paths in refs.items() for path in paths]
        ref_codes = pool.map(_reference, [str(path) for _, path in ref_paths])
    print(f"  extracted {len(names)} photos in {time.perf_counter() - started:.0f} s", flush=True)
    meta: dict = {"photos": [], "refs": []}
    arrays: dict[str, np.ndarray] = {}
    for i, ph in enumerate(photos):
        entry = {"name": ph["name"], "decode_s": ph["decode_s"], "shape": list(ph["shape"])}
        entry["grain"] = ph["grain"]
        for variant in filter(_cached, ph):
            v = ph[variant]
            arrays[f"p{i}_{variant}"] = v["encodings"]
            keys = ("boxes", "scores", "detect_s", "chips_s", "encode_s", "confirm", "confirm_s")
            entry[variant] = {k: v[k] for k in keys if k in v}
        meta["photos"].append(entry)
    for j, ((person, path), code) in enumerate(zip(ref_paths, ref_codes, strict=True)):
        meta["refs"].append({"person": person, "path": path.name, "ok": code is not None})
        if code is not None:
            arrays[f"r{j}"] = np.asarray(code, np.float32)
    np.savez(cache, **arrays)
    meta_file.write_text(json.dumps(meta))
    return _unpack(meta, np.load(cache))


def _unpack(meta: dict, arrays) -> dict:
    photos = {}
    for i, entry in enumerate(meta["photos"]):
        for variant in filter(_cached, entry):
            entry[variant]["encodings"] = arrays[f"p{i}_{variant}"]
        photos[entry["name"]] = entry
    refs: dict[str, list[np.ndarray]] = defaultdict(list)
    for j, r in enumerate(meta["refs"]):
        if r["ok"]:
            refs[r["person"]].append(arrays[f"r{j}"])
    return {"photos": photos, "refs": {p: np.array(c) for p, c in refs.items()}}


# ---------------------------------------------------------------- a source's faces


@dataclass
class Source:
    """The faces a scan would hand to the decision, and for each the truth face it lies on."""

    names: list[str]  # people in gallery order
    refs: dict[str, np.ndarray]
    photo: list[str]
    box: list[tuple]
    score: np.ndarray
    encodings: np.ndarray
    truth_of: list[object]  # (photo, index in truth) or None
    detect_s: float = 0.0
    prints: list[bytes | None] | None = None  # each face's photo fingerprint, as the scan takes it


def distances_to(
    encodings: np.ndarray, names: list[str], refs: dict, how: str = "nearest"
) -> np.ndarray:
    """As the scan measures them (Gallery.distances), over each person's references `how`."""
    gallery = Gallery({n: refs[n].astype(np.float32) for n in names}, over=how)
    columns = [gallery.names.index(n) for n in names]
    return gallery.distances(encodings.astype(np.float32))[:, columns]


def source(
    ex: dict,
    truth: dict,
    floor: float = -0.2,
    extra: str | None = None,
    extra_when=None,
    extra_floor: float | None = None,
    first: str = "base",
    verified: tuple[float, float, int | None] | None = (UNSURE_FLOOR, CNN_CONFIRMS, UNSURE_ASKED),
    confirmed_by: str = "score_at",
) -> Source:
    """The faces of the production pass at this floor; with `extra`, a second pass's detections
    that overlap none of the first pass's are added, on photos where `extra_when(entry)` holds.
    With `verified` (low, score, cap), the production pass's detections from `low` up to the
    floor (the `cap` best of a photo's) are kept too where the CNN scored them at least `score`:
    at their own place and scale as the engine asks it (`confirmed_by` "score_at"), or with a
    window of its whole-pyramid scan ("cnn", needs --cnn-scan)."""
    names = sorted(ex["refs"])
    photo, box, score, codes, truth_of = [], [], [], [], []
    detect_s = 0.0
    for name in sorted(ex["photos"]):
        entry = ex["photos"][name]
        tfaces = truth["photos"][name]["faces"]
        base = entry[first]
        kept = [i for i, s in enumerate(base["scores"]) if s >= floor]
        if verified:  # the CNN's scores were cached for the production pass only
            assert first in ("base", *ENCODED_AGAIN) or confirmed_by != "score_at"
            low, least, cap = verified
            unsure = [i for i, s in enumerate(base["scores"]) if low <= s < floor]
            unsure = sorted(unsure, key=lambda i: -base["scores"][i])[:cap]
            if confirmed_by == "score_at":
                kept += [i for i in unsure if base["confirm"][i] >= least]
                # the CNN's time over every cached unsure detection, in proportion to those asked
                cached = sum(1 for c in base["confirm"] if c is not None)
                detect_s += base["confirm_s"] * len(unsure) / max(cached, 1)
            else:
                cnn = entry["cnn"]
                seen = [
                    tuple(b) for b, s in zip(cnn["boxes"], cnn["scores"], strict=True) if s >= least
                ]
                kept += [
                    i for i in unsure if any(overlaps(tuple(base["boxes"][i]), c) for c in seen)
                ]
        items = [(tuple(base["boxes"][i]), base["scores"][i], base["encodings"][i]) for i in kept]
        detect_s += base["detect_s"]
        if extra and (extra_when is None or extra_when(entry, truth["photos"][name])):
            ev = entry[extra]
            detect_s += ev["detect_s"]
            ef = floor if extra_floor is None else extra_floor
            for i, s in enumerate(ev["scores"]):
                b = tuple(ev["boxes"][i])
                if s >= ef and not any(overlaps(b, it[0]) for it in items):
                    items.append((b, s, ev["encodings"][i]))
        for b, s, e in items:
            photo.append(name)
            box.append(b)
            score.append(s)
            codes.append(e)
            hit = [j for j, f in enumerate(tfaces) if overlaps(b, tuple(f["box"]))]
            j = hit[0] if len(hit) == 1 else _best(b, tfaces, hit)
            truth_of.append(None if j is None else (name, j))
    enc = np.array(codes, np.float32).reshape(-1, 128)
    prints = [ex["prints"][p] for p in photo] if "prints" in ex else None
    return Source(names, ex["refs"], photo, box, np.array(score), enc, truth_of, detect_s, prints)


def _best(b, tfaces, hit):
    if not hit:
        return None
    from matching_bench import iou

    return max(hit, key=lambda j: iou(b, tuple(tfaces[j]["box"])))


# ---------------------------------------------------------------- the rule, step by step


@dataclass
class Trace:
    """For each face of the source: its nearest person and the step that stopped it."""

    proposed: dict[int, str] = field(default_factory=dict)  # face -> person
    group: dict[int, tuple[str, int]] = field(default_factory=dict)
    stop: dict[int, str] = field(default_factory=dict)  # for near faces not proposed
    z: dict[int, float] = field(default_factory=dict)


def trace_decide(
    src: Source,
    rule: DecisionRule,
    distances: np.ndarray | None = None,
    anchors=None,
    group_z: float | None = None,
) -> Trace:
    """decision.decide, with every near face's fate recorded. Must propose exactly what decide()
    proposes (checked in main). `group_z`, if given, is the look-alike group test's threshold in
    place of the rule's z (a variant: the rule has one z for faces and groups)."""
    d_all = (
        distances_to(src.encodings, src.names, src.refs, rule.references)
        if distances is None
        else distances
    )
    cohort = Cohort(src.encodings, d_all)
    if anchors is None:
        anchors = np.array([src.refs[n].mean(axis=0) for n in src.names])
    tr = Trace()
    if not len(cohort):
        return tr
    nearest = d_all.argmin(axis=1)
    runner_up = dec._runner_up(d_all)
    copies = dec._Copies(src.prints) if src.prints is not None else None
    for p, person in enumerate(src.names):
        mine = nearest == p
        if not (d_all[mine, p] <= rule.possible).any():
            continue
        d = d_all[:, p].astype(np.float64)
        near = np.flatnonzero(mine & (d <= rule.possible))
        clear = dec._without_competitor(cohort, p, near, rule)
        mean, sd = dec._cohort_stats(cohort, d, near[clear], rule)
        z = (d[near] - mean) / sd
        zpass = z <= rule.z_max
        expanded, beyond, followed = dec._expansion(
            cohort, near[clear & zpass], near, mine, d, anchors[p], rule, copies
        )
        reach = np.flatnonzero((d <= rule.group_reach) | (mine & (d <= rule.possible)))
        groups = dec._groups(
            cohort.encodings, reach[np.argsort(d[reach], kind="stable")], anchors[p], rule
        )
        judged = rule if group_z is None else replace(rule, z_max=group_z)
        doubtful = dec._doubtful_groups(groups, d, mean, sd, judged, followed, copies)
        for k, i in enumerate(near.tolist()):
            tr.z[i] = float(z[k])
            if not clear[k]:
                tr.stop[i] = "competitor"
            elif not (zpass[k] or expanded[k]):
                tr.stop[i] = "z-norm"
            elif groups[i] in doubtful:
                tr.stop[i] = "doubtful group"
            else:
                tr.proposed[i] = person
                tr.group[i] = (person, groups[i])
        for i in beyond.tolist():
            if groups[i] in doubtful:
                tr.stop[i] = "doubtful group"
            else:
                tr.proposed[i] = person
                tr.group[i] = (person, groups[i])
        kept_here = np.array([i for i, who in tr.proposed.items() if who == person], dtype=int)
        once, _ = dec._once_a_photo(kept_here, d, src.photo)
        for i in set(kept_here.tolist()) - set(once.tolist()):
            del tr.proposed[i], tr.group[i]
            tr.stop[i] = "a nearer face in the photo"
        kept_here = once
        between = dec._between_groups(cohort.encodings, kept_here, groups, rule, copies)
        for i in dec._alone(kept_here, d, runner_up, rule, between):
            tr.group[i] = (person, -1 - i)  # a decision of its own
    return tr


# ---------------------------------------------------------------- scoring


STAGES = (
    "not detected",
    "too far (> possible)",
    "nearer another owner",
    "competitor",
    "z-norm",
    "doubtful group",
    "a nearer face in the photo",
    "claimed twice",
    "proposed",
)


def fold_of(truth: dict) -> dict[str, str]:
    """models/calibrate.py's folds: calib identities alternating within their group (sorted);
    the people outside calib/ alternate too, as their own group."""
    by_group: dict[str, list[str]] = defaultdict(list)
    for p, ident in truth["identities"].items():
        by_group[ident["group"]].append(p)
    out = {}
    for _g, people in by_group.items():
        for i, p in enumerate(sorted(people)):
            out[p] = "A" if i % 2 == 0 else "B"
    return out


def calib_folds() -> dict[str, str]:
    """The folds exactly as calibrate.py builds them (from IDENTITIES.tsv, all calib people)."""
    from platform_set import calib_identities

    by_group: dict[str, list[str]] = defaultdict(list)
    for i in calib_identities():
        by_group[i.group].append(i.person)
    out = {}
    for _g, people in by_group.items():
        for k, p in enumerate(sorted(people)):
            out[p] = "A" if k % 2 == 0 else "B"
    return out


def owner_folds(truth: dict) -> dict[str, str]:
    """Each person's fold: calibrate.py's for the calib people, fold_of's for the others."""
    return {**fold_of(truth), **calib_folds()}


@dataclass
class Result:
    # (group, fold) -> stage counts over owner faces
    stages: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))
    proposals: Counter = field(default_factory=Counter)  # fold -> proposals
    correct: Counter = field(default_factory=Counter)
    wrong_by_group: Counter = field(default_factory=Counter)  # (group, fold) -> wrong
    proposed_by_group: Counter = field(default_factory=Counter)
    mixed: Counter = field(default_factory=Counter)  # fold -> mixed groups
    decisions: Counter = field(default_factory=Counter)
    wrong_list: list = field(default_factory=list)
    found: Counter = field(default_factory=Counter)  # owner -> faces proposed rightly

    @classmethod
    def merged(cls, results: Iterable[Result]) -> Result:
        """Decisions on one source for owners none of them share, as one result."""
        out = cls()
        for r in results:
            for key, stages in r.stages.items():
                out.stages[key].update(stages)
            for f in fields(cls):
                if f.name not in ("stages", "wrong_list"):
                    getattr(out, f.name).update(getattr(r, f.name))
            out.wrong_list += r.wrong_list
        return out


def evaluate(
    src: Source, truth: dict, tr: Trace, d_all: np.ndarray | None = None, possible: float = 0.6
) -> Result:
    """The proposals of `tr` judged, and every face of the owners in `src.names` (the gallery
    decided, all owners or some) followed to the step that stopped it."""
    folds = owner_folds(truth)
    ident = truth["identities"]
    d_all = distances_to(src.encodings, src.names, src.refs) if d_all is None else d_all
    nearest = d_all.argmin(axis=1) if len(d_all) else np.zeros(0, int)
    face_at: dict[tuple, list[int]] = defaultdict(list)
    for i, t in enumerate(src.truth_of):
        if t is not None:
            face_at[t].append(i)
    res = Result()
    stages = res.stages
    # proposals, judged: right when on a face of the named person (a face claimed once)
    claimed = set()
    outcomes: dict[tuple[str, int], set] = defaultdict(set)
    order = sorted(tr.proposed, key=lambda i: d_all[i, src.names.index(tr.proposed[i])])
    for i in order:
        person = tr.proposed[i]
        fold = folds[person]
        t = src.truth_of[i]
        who = truth["photos"][t[0]]["faces"][t[1]]["person"] if t else None
        ok = who == person and t not in claimed
        if ok:
            claimed.add(t)
            res.found[person] += 1
        res.proposals[fold] += 1
        res.correct[fold] += ok
        g = ident[person]["group"]
        res.proposed_by_group[(g, fold)] += 1
        res.wrong_by_group[(g, fold)] += not ok
        outcomes[tr.group[i]].add(ok)
        if not ok:
            res.wrong_list.append(
                (person, who, src.photo[i], round(float(d_all[i, src.names.index(person)]), 3))
            )
    for key, oc in outcomes.items():
        res.decisions[folds[key[0]]] += 1
        res.mixed[folds[key[0]]] += len(oc) == 2
    for name, entry in truth["photos"].items():
        for j, f in enumerate(entry["faces"]):
            if not f["owner"] or f["person"] not in src.names:
                continue
            person = f["person"]
            key = (f["group"], folds[person])
            found = face_at.get((name, j), [])
            if (name, j) in claimed:
                stages[key]["proposed"] += 1
                continue
            if not found:
                stages[key]["not detected"] += 1
                continue
            i = found[0]
            p = src.names.index(person)
            if d_all[i, p] > possible:
                stage = "too far (> possible)"
            elif nearest[i] != p:
                stage = "nearer another owner"
            else:
                stage = tr.stop.get(i, "claimed twice")  # proposed, but the face was claimed
            stages[key][stage] += 1
    return res


def summarise(res: Result, folds: Iterable[str] = ("A", "B")) -> dict:
    out = {}
    for fold in (*folds, "all"):
        keep = (lambda f: True) if fold == "all" else (lambda f, fold=fold: f == fold)
        prop = sum(v for f, v in res.proposals.items() if keep(f))
        corr = sum(v for f, v in res.correct.items() if keep(f))
        total = Counter()
        for (_g, f), c in res.stages.items():
            if keep(f):
                total.update(c)
        faces = sum(total.values())
        worst = 0.0
        worst_g = ""
        by_g: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (g, f), n in res.proposed_by_group.items():
            if keep(f):
                by_g[g][0] += n
                by_g[g][1] += res.wrong_by_group[(g, f)]
        for g, (n, w) in by_g.items():
            if n and w / n > worst:
                worst, worst_g = w / n, g
        out[fold] = {
            "faces": faces,
            "recall": total["proposed"] / faces if faces else math.nan,
            "precision": corr / prop if prop else math.nan,
            "proposals": prop,
            "wrong": prop - corr,
            "worst": (worst, worst_g),
            "mixed": sum(v for f, v in res.mixed.items() if keep(f)),
            "decisions": sum(v for f, v in res.decisions.items() if keep(f)),
        }
    return out


def stage_table(res: Result) -> str:
    groups = sorted({g for g, _ in res.stages})
    lines = []
    for g in [*groups, "all"]:
        for fold in ("A", "B", "*"):
            c = Counter()
            for (gg, f), cc in res.stages.items():
                if (g == "all" or gg == g) and (fold == "*" or f == fold):
                    c.update(cc)
            n = sum(c.values())
            if not n:
                continue
            lines.append(
                [g if fold != "*" else f"{g} (both)", fold, str(n)]
                + [str(c[s]) for s in STAGES]
                + [f"{c['proposed'] / n:.3f}"]
            )
    return render_table(["owner's group", "fold", "faces", *STAGES, "recall"], lines)


def decided(src: Source, truth: dict, rule: DecisionRule, alone: bool) -> dict:
    """The shipped rule's result, every owner together or each owner alone."""
    groups = [[p] for p in src.names] if alone else [src.names]
    results = []
    for names in groups:
        part = replace(src, names=names, refs={p: src.refs[p] for p in names})
        d = distances_to(part.encodings, part.names, part.refs, rule.references)
        trace = trace_decide(part, rule, distances=d)
        results.append(evaluate(part, truth, trace, d_all=d, possible=rule.possible))
    return summarise(Result.merged(results))


def line(tag: str, s: dict) -> str:
    parts = []
    for fold in ("A", "B", "all"):
        x = s[fold]
        w, g = x["worst"]
        parts.append(
            f"{fold}: R {x['recall']:.3f} P {x['precision']:.3f} wrong {x['wrong']} "
            f"worst {w:.0%}{' ' + g if g else ''} mixed {x['mixed']} dec {x['decisions']}"
        )
    return f"{tag:38s} | " + " | ".join(parts)


def load(name: str, workers: int, cnn_scan: bool = False) -> tuple[dict, dict]:
    set_dir = PROJECT_ROOT / ".bench" / name
    truth = build(name, set_dir)
    ex = extract(set_dir, truth, workers, cnn_scan)
    return truth, {**ex, "prints": photo_prints(set_dir, truth)}


def photo_prints(set_dir: Path, truth: dict) -> dict[str, bytes]:
    """Each photo's fingerprint as the scan takes it (images.photo_print of the photo decoded as
    the engine decodes it), cached beside the audit's faces."""
    cache = set_dir / "audit" / "prints.json"
    if cache.exists():
        return {k: bytes.fromhex(v) for k, v in json.loads(cache.read_text()).items()}
    prints = {}
    for name in sorted(truth["photos"]):
        try:
            data = (set_dir / "photos" / name).read_bytes()
            photo = decode_photo(data, max_side=INFORMATION_SIDE)
        except UnreadablePhoto:
            continue
        prints[name] = photo_print(photo.rgb)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({k: v.hex() for k, v in prints.items()}))
    return prints


def check_against_decide(src: Source, rule: DecisionRule, tr: Trace) -> None:
    d = distances_to(src.encodings, src.names, src.refs, rule.references)
    anchors = np.array([src.refs[n].mean(axis=0) for n in src.names])
    decided = dec.decide(
        Cohort(src.encodings, d), src.names, anchors, rule, src.photo, prints=src.prints
    )
    got = {(p.face, p.person) for p in decided}
    mine = set(tr.proposed.items())
    assert got == mine, f"trace differs from decide(): {len(got ^ mine)} faces"
    # ...and gathers them into the same decisions (the audit counts them)
    theirs, ours = defaultdict(set), defaultdict(set)
    for p in decided:
        theirs[(p.person, p.group)].add(p.face)
    for i, key in tr.group.items():
        ours[key].add(i)
    same = {frozenset(f) for f in theirs.values()} == {frozenset(f) for f in ours.values()}
    assert same, "trace groups the proposals differently from decide()"


def variants(data: dict[str, tuple[dict, dict]], rule: DecisionRule) -> None:
    """Every change tried, on both sets, reported per fold of the owners."""
    z = {f"z_max {v}": (replace(rule, z_max=v), {}) for v in (-2.25, -2.0, -1.75)}
    tried: dict[str, tuple[DecisionRule, dict]] = {
        "shipped": (rule, {}),
        **z,
        "possible 0.62": (replace(rule, possible=0.62), {}),
        "possible 0.64, z_max -2.25": (
            replace(rule, possible=0.64, z_max=-2.25),
            {},
        ),
        "no nearest look-alike test (before)": (
            replace(rule, neighbour_radius=rule.expand_radius),
            {},
        ),
        **{
            f"neighbour_radius {v}": (replace(rule, neighbour_radius=v), {})
            for v in (0.52, 0.6, 0.64)
        },
        "copies not set apart (copy_distance 0)": (replace(rule, copy_distance=0.0), {}),
        "expand_radius 0.52": (replace(rule, expand_radius=0.52), {}),
        "expand_radius 0.56": (replace(rule, expand_radius=0.56), {}),
        **{f"expand_reach {v}": (replace(rule, expand_reach=v), {}) for v in (0.6, 0.64, 0.68)},
        "stop 30's rule (CNN asked about 2, expand_reach 0.64)": (
            replace(rule, expand_reach=0.64),
            {"verified": (UNSURE_FLOOR, CNN_CONFIRMS, 2)},
        ),
        "nearest reference (before)": (replace(rule, references="nearest"), {}),
        **{
            f"faces {lo}-{hi} from an owner encoded with 10 jitters": (
                rule,
                {"jitter_band": (lo, hi)},
            )
            for lo, hi in ((0.5, 0.68), (0.55, 0.66), (0.58, 0.66), (0.6, 0.66), (0.6, 0.7))
        },
        "group_min 5": (replace(rule, group_min=5), {}),
        **{f"group test at z {v}": (rule, {"group_z": v}) for v in (-2.6, -2.75, -3.0)},
        "no group test": (replace(rule, group_min=10**6), {}),
        "competitor_margin 0.15": (replace(rule, competitor_margin=0.15), {}),
        "z_max -2.6": (replace(rule, z_max=-2.6), {}),
        **{
            f"detector floor {f}, no second opinion": (
                rule,
                {"floor": f, "verified": None},
            )
            for f in (-0.4, -0.5, -0.6)
        },
        "2nd pass x1.5, photos <= 1100 px": (
            rule,
            {"extra": "up15", "extra_when": lambda e, t: max(t["size"]) <= 1100},
        ),
        "2nd pass x1.5, screenshots": (
            rule,
            {"extra": "up15", "extra_when": lambda e, t: t["kind"] == "screenshot"},
        ),
        "2nd pass x1.5, every photo": (rule, {"extra": "up15"}),
        "no second look at grainy photos, nor CNN": (
            rule,
            {"first": "one_look", "verified": None},
        ),
        "no CNN second opinion on unsure faces": (rule, {"verified": None}),
        "every face encoded as the references are (10 jitters)": (
            rule,
            {"first": JITTERED},
        ),
        "every face encoded as the mean with its mirror image": (rule, {"first": MIRRORED}),
        **{
            f"dark faces of grainy photos restored, sigma {sigma}, brightened to {to}": (
                rule,
                {"restored": Restoration(sigma, to)},
            )
            for sigma, to in ((1.2, 115.0), (1.6, 115.0), (1.2, 90.0), (1.6, None))
        },
        **{
            f"CNN second opinion from {low}, confirms at {t}, asked about {cap or 'all'}": (
                rule,
                {"verified": (low, t, cap)},
            )
            for low, t, cap in (
                (-0.6, 0.0, None),
                (-0.6, 0.3, None),
                (-0.6, 0.6, None),
                (-0.8, 0.3, None),
                (-0.8, 0.6, None),
                (-0.8, 0.3, 1),
                (-0.8, 0.3, 2),
                (-0.8, 0.3, 3),
                (-1.0, 0.3, None),
                (-1.0, 0.3, 2),
                (-1.0, 0.6, None),
            )
        },
    }
    scanned: dict[str, tuple[DecisionRule, dict]] = {
        "CNN window on unsure faces (whole-pyramid scan), from -0.6, >= 0.3": (
            rule,
            {"confirmed_by": "cnn"},
        ),
        **{
            f"CNN scan, small levels >= {t}, grainy photos": (
                rule,
                {"extra": "cnn_small", "extra_floor": t, "extra_when": _grainy},
            )
            for t in (0.0, 0.3)
        },
        **{
            f"CNN scan, small levels >= {t}, every photo": (
                rule,
                {"extra": "cnn_small", "extra_floor": t},
            )
            for t in (0.0, 0.3)
        },
        "CNN scan, whole pyramid >= 0.0, every photo": (
            rule,
            {"extra": "cnn", "extra_floor": 0.0},
        ),
    }
    for name, (truth, ex) in data.items():
        if "cnn" in next(iter(ex["photos"].values())):
            tried.update(scanned)
        chips = _grainy_chips(PROJECT_ROOT / ".bench" / name, ex)
        base_s = source(ex, truth).detect_s
        print(
            f"\n== {name}: changes tried (owners by fold; worst = largest wrong share of a group)"
        )
        for tag, (r, kw) in tried.items():
            kw = dict(kw)
            band = kw.pop("jitter_band", None)
            restoration = kw.pop("restored", None)
            group_z = kw.pop("group_z", None)
            src = source(restoration.applied(ex, chips) if restoration else ex, truth, **kw)
            if band:
                src = _jittered_in_band(src, source(ex, truth, **kw, first=JITTERED), band)
            d = distances_to(src.encodings, src.names, src.refs, r.references)
            res = evaluate(
                src,
                truth,
                trace_decide(src, r, distances=d, group_z=group_z),
                d_all=d,
                possible=r.possible,
            )
            cost = f"detect x{src.detect_s / base_s:.2f}, faces {len(src.encodings)}"
            print(line(tag, summarise(res)) + f" | {cost}")


def _jittered_in_band(src: Source, jit: Source, band: tuple[float, float]) -> Source:
    """`src` with the faces whose nearest owner is `band` away (lo, hi] encoded as references are
    (the mean of 10 jittered copies), the others as the scan encodes them."""
    lo, hi = band
    d = distances_to(src.encodings, src.names, src.refs).min(axis=1)
    pick = (d > lo) & (d <= hi)
    return replace(src, encodings=np.where(pick[:, None], jit.encodings, src.encodings))


LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class Restoration:
    """A dark face of a grainy photo (a night shot) encoded from a restored copy of its aligned
    150 px face: smoothed (Gaussian, `sigma` px) against the grain, then brightened to a mean
    level of `to` (None: not brightened). Faces brighter than `dark` are left as they are."""

    sigma: float
    to: float | None
    dark: float = 70.0

    def restored(self, chip: np.ndarray) -> np.ndarray | None:
        from PIL import Image, ImageFilter

        level = float(chip.astype(np.float32).dot(LUMA).mean())
        if level >= self.dark:
            return None
        out = np.asarray(Image.fromarray(chip).filter(ImageFilter.GaussianBlur(self.sigma)))
        out = out.astype(np.float32)
        if self.to is not None:
            out *= self.to / max(level, 1.0)
        return np.clip(out, 0, 255).astype(np.uint8)

    def applied(self, ex: dict, chips: dict[str, np.ndarray]) -> dict:
        """`ex` with the production pass's encodings of restored faces replaced."""
        from service.faces.engine import NOISY_PHOTO

        if _engine is None:
            _start()
        assert _engine is not None
        photos = dict(ex["photos"])
        for name, photo_chips in chips.items():
            if photos[name]["grain"] <= NOISY_PHOTO:
                continue
            restored = {i: self.restored(chip) for i, chip in enumerate(photo_chips)}
            restored = {i: chip for i, chip in restored.items() if chip is not None}
            codes = photos[name]["base"]["encodings"].copy()
            if restored:
                codes[list(restored)] = _encode(np.stack(list(restored.values())))
            photos[name] = {**photos[name], "base": {**photos[name]["base"], "encodings": codes}}
        return {**ex, "photos": photos}


def _grainy_chips(set_dir: Path, ex: dict) -> dict[str, np.ndarray]:
    """The aligned faces of the production pass on every grainy photo, cached (one process:
    night shots are a sixth of a set)."""
    from PIL import Image

    from service.faces.engine import DETECTION_UPSCALE, INFORMATION_SIDE, NOISY_PHOTO
    from service.faces.images import decode_photo

    cache = set_dir / "audit" / f"grainy_chips_v{CACHE_VERSION}.npz"
    if cache.exists():
        return dict(np.load(cache))
    if _engine is None:
        _start()
    assert _engine is not None
    out = {}
    for name, entry in ex["photos"].items():
        if entry["grain"] <= NOISY_PHOTO:
            continue
        photo = decode_photo((set_dir / "photos" / name).read_bytes(), max_side=INFORMATION_SIDE)
        found = _engine._hog(Image.fromarray(photo.rgb), DETECTION_UPSCALE, True, AUDIT_FLOOR)
        assert len(found) == len(entry["base"]["scores"]), f"{name}: not the cached detections"
        out[name] = _chips(photo, found)
    np.savez(cache, **out)
    return out


def _grainy(entry: dict, photo: dict) -> bool:
    from service.faces.engine import NOISY_PHOTO

    return bool(entry["grain"] > NOISY_PHOTO)


def simulated(rule: DecisionRule) -> None:
    """models/calibrate.py's simulated exports (30 splits per fold), each owner's nearest
    reference against the mean (and median) over the owner's references: at a few z thresholds,
    then with 3 references, at random or including the owner's worst photo (the one farthest,
    on average, from their others: a poor reference, as an owner might enroll)."""
    sys.path.insert(0, str(PROJECT_ROOT / "models"))
    import calibrate as cal

    photos = cal.encode_all()
    folds = {"A": cal.folds(photos)[0], "B": cal.folds(photos)[1]}
    combine = {"min": np.min, "mean": np.mean, "median": np.median}

    def run(how: str, r: DecisionRule, refs: int = 2, worst: bool = False) -> str:
        pick = functools.partial(_references, n_refs=refs, worst=worst)
        out = []
        for tag, fold in folds.items():
            total = cal.Tally.new()
            for seed in range(cal.SPLITS):
                t = cal.simulate(photos, fold, r, seed, pick=pick, combine=combine[how])
                for mine, theirs in zip(vars(total).values(), vars(t).values(), strict=True):
                    mine.update(theirs)
            s = cal.summary(photos, total)
            g, worst_group = max(s["by_group"].items(), key=lambda kv: kv[1]["wrong_share"])
            out.append(
                f"{tag}: P {s['precision']:.3f} R {s['recall']:.3f} FMR {s['false_match_rate']:.5f}"
                f" worst {worst_group['wrong_share']:.0%} {g}"
            )
        return " | ".join(out)

    print("\n== simulated exports (models/calibrate.py), per fold")
    for z in (-2.5, -2.25, -2.0):
        for how in ("min", "mean"):
            print(f"{how:4s} z_max {z:5}: {run(how, replace(rule, z_max=z))}", flush=True)
    for refs, worst in ((3, False), (3, True), (2, True)):
        for how in ("min", "mean", "median"):
            tag = f"{refs} references{', the worst among them' if worst else ''}, {how}"
            print(f"{tag:45s}: {run(how, rule, refs, worst)}", flush=True)


def _references(photos, owner: str, rng, n_refs: int, worst: bool) -> np.ndarray:
    mine = np.flatnonzero(photos.person == owner)
    if not worst:
        return rng.permutation(mine)[:n_refs]
    codes = photos.probe[mine]
    spread = np.linalg.norm(codes[:, None] - codes[None], axis=2).mean(axis=1)
    bad = mine[spread.argmax()]
    return np.array([bad, *rng.permutation(mine[mine != bad])[: n_refs - 1]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sets_argument(parser)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", action="store_true", help="score every change tried")
    parser.add_argument("--simulated", action="store_true", help="calibrate.py's exports too")
    parser.add_argument(
        "--cnn-scan", action="store_true", help="also scan every photo with the CNN (~9x HOG)"
    )
    args = parser.parse_args()
    rule = DecisionRule.load()
    data = {}
    for name in chosen_sets(parser, args.sets):
        truth, ex = load(name, args.workers, args.cnn_scan)
        data[name] = (truth, ex)
        src = source(ex, truth)
        d = distances_to(src.encodings, src.names, src.refs, rule.references)
        tr = trace_decide(src, rule, distances=d)
        check_against_decide(src, rule, tr)
        res = evaluate(src, truth, tr, d_all=d, possible=rule.possible)
        print(f"\n== {name}: recall loss per stage (first failing step), shipped rule")
        print(stage_table(res))
        print(line("shipped rule", summarise(res)))
        print(after_review(src, truth, rule))
        timing(ex)
    if args.variants:
        variants(data, rule)
    if args.simulated:
        simulated(rule)


def after_review(src: Source, truth: dict, rule: DecisionRule) -> str:
    """What the owners reach once they answer every wrong card "not me", every owner decided
    together: in a photo where a face waits behind the one proposed (service/standby.py), the
    next face is asked about after each "not me", until one is the owner's or none is left."""
    d = distances_to(src.encodings, src.names, src.refs, rule.references)
    anchors = np.array([src.refs[n].mean(axis=0) for n in src.names])
    cohort = Cohort(src.encodings, d)
    queues: dict[tuple[str, str], list] = defaultdict(list)
    found = dec.decide(cohort, src.names, anchors, rule, src.photo, prints=src.prints, standby=True)
    for p in found:
        queues[(p.person, src.photo[p.face])].append(p)

    def whose(i: int) -> object:
        t = src.truth_of[i]
        return truth["photos"][t[0]]["faces"][t[1]]["person"] if t else None

    first = later = asked = waiting = 0
    for (person, _), queue in queues.items():
        queue.sort(key=lambda p: (p.behind is not None, p.distance))
        waiting += len(queue) - 1
        for n, p in enumerate(queue):
            asked += n > 0
            if whose(p.face) == person:
                first += n == 0
                later += n > 0
                break
    return (
        f"  after review (each wrong card answered not me): {first} owner faces proposed first, "
        f"{later} more asked about next, from {waiting} faces waiting behind a nearer one "
        f"({asked} more cards)"
    )


def timing(ex: dict) -> None:
    t = Counter()
    for e in ex["photos"].values():
        t["decode"] += e["decode_s"]
        for v in filter(_cached, e):
            for k in ("detect_s", "chips_s", "encode_s", "confirm_s"):
                t[f"{v} {k}"] += e[v].get(k, 0.0)
    print(
        "  time per step over the set (one process): "
        + ", ".join(f"{k} {v:.1f}s" for k, v in t.items())
    )


if __name__ == "__main__":
    main()
