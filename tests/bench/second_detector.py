"""A probe, not a product path: would BlazeFace find the bench sets' faces in less time than HOG?

HOG is about four fifths of the engine's time on platform-sized photos, and both the engine and the
face_recognition command line run it, so no gain elsewhere reaches 2.2x the command line there.
MediaPipe's full-range BlazeFace (Apache-2.0) ships inside the `mediapipe` wheel on PyPI. Run (the
detector is not a dependency of the project; uv adds its runtime for this run only):
    pip download --no-deps mediapipe==0.10.14 -d /tmp/mp && unzip -j /tmp/mp/mediapipe-*.whl \
        'mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite' -d /tmp/mp
    uv run --with ai-edge-litert==2.3.0 python tests/bench/second_detector.py \
        --model /tmp/mp/face_detection_full_range_sparse.tflite [sets...]

Each photo, turned upright, is brought to a long side of 768 or 1080 px and cut into 192 px tiles
overlapping by a quarter, the network's own input, so a 40 px face of a 1080 px post keeps 28 px
or more. A truth face counts as found when a detection's box holds its centre. The table gives
the faces found (every face and the owners'), detections on no truth face, the time a photo in one
thread, and which owner faces the engine's scan missed (matching_bench.py's report, when there is
one) this finds.

With --rule SIDE, the shipped rule is replayed on the faces of four ways of detecting (needs
recall_audit.py's caches, built on first use): HOG as shipped; BlazeFace's boxes alone, made
HOG-like by a fit of centre and size read off the first set and then landmarked, aligned and
encoded as the engine does (and again with the owners' references boxed by BlazeFace too);
HOG's and BlazeFace's together; and HOG only where BlazeFace found a face (from the cache, then
for real on crops around its boxes). models/EXPERIMENTS.md, "A second detector", has the
figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dlib
import numpy as np
from PIL import Image, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))

from matching_bench import iou, overlaps
from platform_set import PROJECT_ROOT, add_sets_argument, chosen_sets
from recall_audit import decided, line, load, source

from service.faces.decision import DecisionRule
from service.faces.engine import (
    DENOISE_SIGMA,
    DETECTION_UPSCALE,
    INFORMATION_SIDE,
    NOISY_PHOTO,
    UNSURE_FLOOR,
    FaceEngine,
    _at_information_scale,
    _original_box,
    _same_face,
    _scaled_rect,
    _union,
    grain,
)
from service.faces.images import decode_photo
from service.faces.matching import Thresholds
from service.faces.modelfiles import verified_model_files

INPUT = 192  # the network's square input
GRID = 48  # its one anchor layer: stride 4, one anchor a cell, centred
LONG_SIDES = (768, 1080)
MIN_SCORE = 0.5
PROPOSES = 0.25  # a lower bar where HOG confirms BlazeFace's boxes
SAME_FACE_IOU = 0.3  # MediaPipe's suppression threshold


class BlazeFace:
    """Full-range BlazeFace: (1, 192, 192, 3) in [-1, 1] -> 2304 boxes and scores."""

    def __init__(self, model: Path, least: float = MIN_SCORE) -> None:
        from ai_edge_litert.interpreter import Interpreter  # only for this probe

        self.least = least
        self._net = Interpreter(model_path=str(model), num_threads=1)
        self._net.allocate_tensors()
        self._in = self._net.get_input_details()[0]["index"]
        self._boxes, self._scores = (d["index"] for d in self._net.get_output_details())
        centres = (np.arange(GRID) + 0.5) / GRID
        self._ax, self._ay = (a.ravel() for a in np.meshgrid(centres, centres))

    def tile(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (x0, y0, x1, y1) in the tile's pixels scoring `least` or more, and scores."""
        self._net.set_tensor(self._in, (rgb.astype(np.float32) / 127.5 - 1.0)[None])
        self._net.invoke()
        raw = self._net.get_tensor(self._boxes)[0]
        scores = 1 / (1 + np.exp(-np.clip(self._net.get_tensor(self._scores)[0, :, 0], -80, 80)))
        keep = scores >= self.least
        r = raw[keep] / INPUT
        cx, cy = r[:, 0] + self._ax[keep], r[:, 1] + self._ay[keep]
        half_w, half_h = r[:, 2] / 2, r[:, 3] / 2
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1) * INPUT
        return boxes, scores[keep]

    def photo(self, image: Image.Image, long_side: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (x0, y0, x1, y1) in the photo's pixels and their scores: the photo scaled to
        `long_side`, tile by tile."""
        scale = long_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        pixels = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
        height, width = pixels.shape[:2]
        step = INPUT * 3 // 4
        found, scores = [np.zeros((0, 4))], [np.zeros(0)]
        for y in range(0, max(1, height - INPUT // 4), step):
            for x in range(0, max(1, width - INPUT // 4), step):
                tile = np.zeros((INPUT, INPUT, 3), np.uint8)
                part = pixels[y : y + INPUT, x : x + INPUT]
                tile[: part.shape[0], : part.shape[1]] = part
                boxes, s = self.tile(tile)
                found.append(boxes + np.array([x, y, x, y]))
                scores.append(s)
        boxes, kept = _suppressed(np.concatenate(found), np.concatenate(scores))
        return boxes / scale, kept


def _suppressed(boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kept: list[int] = []
    for i in np.argsort(-scores):
        if all(iou(_trbl(boxes[i]), _trbl(boxes[j])) < SAME_FACE_IOU for j in kept):
            kept.append(int(i))
    return boxes[kept], scores[kept]


def _trbl(box: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) as the bench's boxes are: (top, right, bottom, left)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return (y0, x1, y1, x0)


def _holds(box: np.ndarray, face: dict) -> bool:
    top, right, bottom, left = face["box"]
    x, y = (left + right) / 2, (top + bottom) / 2
    return bool(box[0] <= x <= box[2] and box[1] <= y <= box[3])


def _engine_missed(set_dir: Path) -> set[tuple[str, str]]:
    report = set_dir / "results" / "report.json"
    if not report.exists():
        return set()
    runs = {run["run"]: run for run in json.loads(report.read_text())}
    missed = runs.get("ours (face level)", {}).get("missed", [])
    return {(m["photo"], m["person"]) for m in missed}


def measure(detector: BlazeFace, name: str) -> None:
    set_dir = PROJECT_ROOT / ".bench" / name
    photos = json.loads((set_dir / "truth.json").read_text())["photos"]
    engine_missed = _engine_missed(set_dir)
    print(f"\n== {name}: {len(photos)} photos")
    print("| long side | faces found | owner faces found | detections on no face | ms a photo |")
    print("| --- | --- | --- | --- | --- |")
    for long_side in LONG_SIDES:
        faces = owners = all_faces = all_owners = stray = 0
        seconds, rescued, lost = 0.0, [], []
        for photo, truth in photos.items():
            image = ImageOps.exif_transpose(Image.open(set_dir / "photos" / photo)).convert("RGB")
            start = time.perf_counter()
            boxes, _ = detector.photo(image, long_side)
            seconds += time.perf_counter() - start
            used: set[int] = set()
            for face in truth["faces"]:
                hits = [i for i, box in enumerate(boxes) if _holds(box, face)]
                all_faces += 1
                all_owners += face["owner"]
                used.update(hits)
                key = (photo, face["person"])
                if hits:
                    faces += 1
                    owners += face["owner"]
                    rescued += [key] if key in engine_missed else []
                elif face["owner"]:
                    lost.append(key)
            stray += len(boxes) - len(used)
        ms = 1000 * seconds / len(photos)
        found = f"{faces} / {all_faces} | {owners} / {all_owners}"
        print(f"| {long_side} | {found} | {stray} | {ms:.0f} |")
        if engine_missed:
            print(f"  of the {len(engine_missed)} owner faces the engine's scan missed: {rescued}")
        print(f"  owner faces not found: {lost}")


# ---------------------------------------------------------------- the shipped rule on its faces


@dataclass(frozen=True)
class BoxFit:
    """HOG's box from BlazeFace's, as the engine's landmarks expect it: centre moved by (dx, dy)
    box widths and heights, sides scaled by (sw, sh). Read off one set's faces both detect."""

    dx: float
    dy: float
    sw: float
    sh: float

    @classmethod
    def read(cls, pairs: list[tuple[np.ndarray, np.ndarray]]) -> BoxFit:
        hog, blaze = (np.array(side, float) for side in zip(*pairs, strict=True))
        bw, bh = blaze[:, 2] - blaze[:, 0], blaze[:, 3] - blaze[:, 1]
        centre = lambda b: ((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2)  # noqa: E731
        (hx, hy), (bx, by) = centre(hog), centre(blaze)
        return cls(
            float(np.median((hx - bx) / bw)),
            float(np.median((hy - by) / bh)),
            float(np.median((hog[:, 2] - hog[:, 0]) / bw)),
            float(np.median((hog[:, 3] - hog[:, 1]) / bh)),
        )

    def __call__(self, box: np.ndarray, width: int, height: int) -> dlib.rectangle:
        w, h = box[2] - box[0], box[3] - box[1]
        x, y = (box[0] + box[2]) / 2 + self.dx * w, (box[1] + box[3]) / 2 + self.dy * h
        half_w, half_h = self.sw * w / 2, self.sh * h / 2
        return dlib.rectangle(
            max(0, round(x - half_w)),
            max(0, round(y - half_h)),
            min(width - 1, round(x + half_w)),
            min(height - 1, round(y + half_h)),
        )


def _xyxy(box: list[int]) -> np.ndarray:
    top, right, bottom, left = box
    return np.array([left, top, right, bottom], float)


def blaze_pass(detector: BlazeFace, name: str, ex: dict, side: int) -> dict:
    """Each photo decoded as the engine decodes it, and BlazeFace's boxes at `side`: per photo the
    decoded photo, the boxes (x0, y0, x1, y1 in its pixels), their scores and the time."""
    set_dir = PROJECT_ROOT / ".bench" / name
    out = {}
    for photo_name in sorted(ex["photos"]):
        photo = decode_photo(
            (set_dir / "photos" / photo_name).read_bytes(), max_side=INFORMATION_SIDE
        )
        start = time.perf_counter()
        boxes, scores = detector.photo(Image.fromarray(photo.rgb), side)
        out[photo_name] = (photo, boxes, scores, time.perf_counter() - start)
    return out


def hog_pairs(ex: dict, raw: dict, floor: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(HOG's box, BlazeFace's) for every face both find, in the original photo's pixels."""
    pairs = []
    for photo_name, (photo, boxes, scores, _) in raw.items():
        boxes = boxes[scores >= MIN_SCORE]
        base = ex["photos"][photo_name]["base"]
        for hog, score in zip(base["boxes"], base["scores"], strict=True):
            if score < floor:
                continue
            found = [b / photo.scale for b in boxes]
            best = max(found, key=lambda b: iou(_trbl(b), tuple(hog)), default=None)
            if best is not None and iou(_trbl(best), tuple(hog)) >= 0.4:
                pairs.append((_xyxy(hog), best))
    return pairs


def with_blaze(engine: FaceEngine, ex: dict, raw: dict, fit: BoxFit) -> dict:
    """The audit's cache with a "blaze" pass beside HOG's: BlazeFace's boxes made HOG-like,
    landmarked, aligned and encoded as the engine does."""
    photos = {}
    for photo_name, (photo, boxes, scores, seconds) in raw.items():
        height, width = photo.rgb.shape[:2]
        rects = [fit(b, width, height) for b in boxes]
        blaze = {
            "boxes": [list(_original_box(r, photo)) for r in rects],
            "scores": [float(x) for x in scores],
            "encodings": _encoded(engine, photo, rects),
            "detect_s": seconds,
        }
        photos[photo_name] = {**ex["photos"][photo_name], "blaze": blaze}
    return {**ex, "photos": photos}


REFERENCE_SIDES = (192, 384, 768)  # a close-up's face fills a tile only at the smaller sides


def blaze_references(detector: BlazeFace, engine: FaceEngine, name: str, ex: dict, fit) -> dict:
    """The audit's cache with the owners' references encoded from BlazeFace's best box, made
    HOG-like as the faces' boxes are, encoded as the engine encodes references."""
    set_dir = PROJECT_ROOT / ".bench" / name
    refs, lost = {}, 0
    for person in sorted(ex["refs"]):
        codes = []
        for path in sorted((set_dir / "references" / person).iterdir()):
            photo = decode_photo(path.read_bytes(), max_side=INFORMATION_SIDE)
            found = [detector.photo(Image.fromarray(photo.rgb), side) for side in REFERENCE_SIDES]
            boxes = np.concatenate([b for b, _ in found])
            scores = np.concatenate([s for _, s in found])
            if not len(boxes):
                lost += 1
                continue
            height, width = photo.rgb.shape[:2]
            rect = fit(boxes[int(np.argmax(scores))], width, height)
            shape = engine._landmarks(photo.rgb, rect)
            codes.append(engine._embedded(engine._aligned(photo.rgb, [shape]))[0])
        refs[person] = np.array(codes, np.float32)
    print(f"  references BlazeFace found no face in: {lost}")
    return {**ex, "refs": refs}


def gated(ex: dict, least: float) -> dict:
    """The audit's cache with HOG's detections kept only where a BlazeFace box scoring `least` or
    more overlaps them: BlazeFace proposes and HOG confirms, simulated from the cache as if HOG
    found on a crop what it finds on the whole photo (with_local measures what it does find
    there). The CNN's second opinion is asked as before."""
    photos = {}
    for photo_name, entry in ex["photos"].items():
        blaze = entry["blaze"]
        near = [
            tuple(b) for b, s in zip(blaze["boxes"], blaze["scores"], strict=True) if s >= least
        ]
        base = entry["base"]
        keep = [i for i, b in enumerate(base["boxes"]) if any(overlaps(tuple(b), n) for n in near)]
        kept = {
            "boxes": [base["boxes"][i] for i in keep],
            "scores": [base["scores"][i] for i in keep],
            "confirm": [base["confirm"][i] for i in keep],
            "encodings": base["encodings"][keep],
            "detect_s": blaze["detect_s"],
            "confirm_s": base["confirm_s"],
        }
        photos[photo_name] = {**entry, "base": kept}
    return {**ex, "photos": photos}


CELL = 8  # HOG's cell at the detection scale: crops start on the whole photo's cell grid


def local_hog(engine: FaceEngine, photo, boxes: np.ndarray) -> list:
    """The engine's detection (HOG, the grainy photos' second look, the CNN's second opinion) run
    only on crops of the photo scaled as the engine scales it, one around each of `boxes`
    (x0, y0, x1, y1 in the decoded photo's pixels), overlapping crops merged."""
    colour = Image.fromarray(photo.rgb)
    grey = colour.convert("L")
    width, height = colour.size
    factor = DETECTION_UPSCALE * min(1.0, INFORMATION_SIDE / max(width, height))
    size = (round(width * factor), round(height * factor))
    looks = [grey.resize(size, Image.Resampling.BILINEAR)]
    if grain(_at_information_scale(grey)) > NOISY_PHOTO:
        smooth = grey.filter(ImageFilter.GaussianBlur(DENOISE_SIGMA))
        looks.append(smooth.resize(size, Image.Resampling.BILINEAR))
    found_per_look: list[list] = [[] for _ in looks]
    for x0, y0, x1, y1 in _crops(boxes * factor, size):
        for found, look in zip(found_per_look, looks, strict=True):
            crop = np.asarray(look.crop((x0, y0, x1, y1)))
            rects, scores, _ = engine._detector.run(crop, 0, UNSURE_FLOOR)
            for r, s in zip(rects, scores, strict=True):
                moved = dlib.rectangle(r.left() + x0, r.top() + y0, r.right() + x0, r.bottom() + y0)
                if not any(_same_face(moved, f) for f, _ in found):
                    found.append((moved, float(s)))
    found = found_per_look[0]
    if len(looks) > 1:
        found = _union(found, found_per_look[1], engine.min_score)
    return engine._kept(colour, [(_scaled_rect(r, 1 / factor, width, height), s) for r, s in found])


def _crops(boxes: np.ndarray, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """A crop around each box, a face's width and HOG's window of context on every side, on the
    cell grid, clipped to the photo; overlapping crops merged into one."""
    crops = []
    for x0, y0, x1, y1 in boxes:
        margin = max(x1 - x0, y1 - y0) + 80
        crops.append(
            [
                max(0, int((x0 - margin) // CELL * CELL)),
                max(0, int((y0 - margin) // CELL * CELL)),
                min(size[0], int(x1 + margin)),
                min(size[1], int(y1 + margin)),
            ]
        )
    while meeting := next(
        (
            (i, j)
            for i in range(len(crops))
            for j in range(i + 1, len(crops))
            if _meet(crops[i], crops[j])
        ),
        None,
    ):
        i, j = meeting
        a, b = crops[i], crops.pop(j)
        crops[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
    return [tuple(c) for c in crops]


def _meet(a: list[int], b: list[int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _encoded(engine: FaceEngine, photo, rects: list[dlib.rectangle]) -> np.ndarray:
    """The faces at `rects` landmarked, aligned and encoded as the engine does."""
    codes = engine._embedded(
        engine._aligned(photo.rgb, [engine._landmarks(photo.rgb, r) for r in rects])
    )
    return np.asarray(codes, np.float32).reshape(-1, 128)


def with_local(engine: FaceEngine, ex: dict, raw: dict, least: float) -> dict:
    """The audit's cache with a "local" pass: the engine's own detection on crops around
    BlazeFace's boxes scoring `least` or more, landmarked, aligned and encoded as the engine
    does; its time is BlazeFace's and the crops'."""
    photos = {}
    for photo_name, (photo, boxes, scores, seconds) in raw.items():
        start = time.perf_counter()
        detected = local_hog(engine, photo, boxes[scores >= least])
        seconds += time.perf_counter() - start
        local = {
            "boxes": [list(_original_box(r, photo)) for r, _ in detected],
            "scores": [s for _, s in detected],
            "encodings": _encoded(engine, photo, [r for r, _ in detected]),
            "detect_s": seconds,
        }
        photos[photo_name] = {**ex["photos"][photo_name], "local": local}
    return {**ex, "photos": photos}


def drift(ex: dict, floor: float) -> np.ndarray:
    """For every face both find (HOG from `floor`), the distance between its encoding
    from HOG's box and from BlazeFace's made HOG-like."""
    gaps = []
    for entry in ex["photos"].values():
        base, blaze = entry["base"], entry["blaze"]
        for i, (box, score) in enumerate(zip(base["boxes"], base["scores"], strict=True)):
            if score < floor:
                continue
            near = [j for j, b in enumerate(blaze["boxes"]) if iou(tuple(b), tuple(box)) >= 0.5]
            if near:
                gap = np.linalg.norm(base["encodings"][i] - blaze["encodings"][near[0]])
                gaps.append(float(gap))
    return np.array(gaps)


def replay(detector: BlazeFace, sets: list[str], side: int, workers: int) -> None:
    floor = Thresholds.load().detector_min_score
    engine = FaceEngine(verified_model_files(), min_score=floor, finder="hog")
    rule = DecisionRule.load()
    fit = None
    for name in sets:
        truth, ex = load(name, workers)
        raw = blaze_pass(detector, name, ex, side)
        if fit is None:
            fit = BoxFit.read(hog_pairs(ex, raw, floor))
            print(f"\n== box fit, read off {name} (HOG from {floor}): {fit}")
        both = with_blaze(engine, ex, raw, fit)
        gaps = drift(both, floor)
        print(
            f"\n== {name}, BlazeFace at {side}: encoding moved by a HOG-like box, over "
            f"{len(gaps)} faces: median {np.median(gaps):.3f}, 90th {np.percentile(gaps, 90):.3f}, "
            f"max {gaps.max():.3f}"
        )
        rows = {
            "HOG (shipped)": source(both, truth),
            "BlazeFace alone": source(both, truth, first="blaze", verified=None, floor=MIN_SCORE),
            "BlazeFace alone, references too": source(
                blaze_references(detector, engine, name, both, fit),
                truth,
                first="blaze",
                verified=None,
                floor=MIN_SCORE,
            ),
            "HOG, then BlazeFace's other faces": source(
                both, truth, extra="blaze", extra_floor=MIN_SCORE
            ),
            **{
                f"BlazeFace from {least} proposes, HOG confirms": source(gated(both, least), truth)
                for least in (MIN_SCORE, PROPOSES)
            },
        }
        local = with_local(engine, both, raw, PROPOSES)
        rows["...HOG run on crops around them"] = source(
            local, truth, first="local", verified=None, floor=UNSURE_FLOOR
        )
        for tag, src in rows.items():
            print(line(tag, decided(src, truth, rule, alone=False)))
        hog, crops = (
            rows["HOG (shipped)"].detect_s,
            rows["...HOG run on crops around them"].detect_s,
        )
        print(
            f"  detection, one process, the CNN's second opinion included: HOG {hog:.1f} s, "
            f"BlazeFace and HOG on crops around its faces {crops:.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sets_argument(parser)
    parser.add_argument("--model", type=Path, required=True, help="full-range BlazeFace .tflite")
    parser.add_argument(
        "--rule",
        type=int,
        metavar="SIDE",
        help="replay the shipped rule on BlazeFace's faces found at this long side (the box fit "
        "is read off the first set)",
    )
    parser.add_argument("--workers", type=int, default=2, help="to build the audit cache")
    args = parser.parse_args()
    detector = BlazeFace(args.model)
    sets = chosen_sets(parser, args.sets)
    if args.rule:
        replay(BlazeFace(args.model, least=PROPOSES), sets, args.rule, args.workers)
        return
    for name in sets:
        measure(detector, name)


if __name__ == "__main__":
    main()
