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
one) this finds. Only detection is measured: the engine's landmarks, encodings and rule would have
to be read again on these boxes before any of this could ship.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))

from platform_set import PROJECT_ROOT, add_sets_argument, chosen_sets

INPUT = 192  # the network's square input
GRID = 48  # its one anchor layer: stride 4, one anchor a cell, centred
LONG_SIDES = (768, 1080)
MIN_SCORE = 0.5
SAME_FACE_IOU = 0.3  # MediaPipe's suppression threshold


class BlazeFace:
    """Full-range BlazeFace: (1, 192, 192, 3) in [-1, 1] -> 2304 boxes and scores."""

    def __init__(self, model: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter  # only for this probe

        self._net = Interpreter(model_path=str(model), num_threads=1)
        self._net.allocate_tensors()
        self._in = self._net.get_input_details()[0]["index"]
        self._boxes, self._scores = (d["index"] for d in self._net.get_output_details())
        centres = (np.arange(GRID) + 0.5) / GRID
        self._ax, self._ay = (a.ravel() for a in np.meshgrid(centres, centres))

    def tile(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (x0, y0, x1, y1) in the tile's pixels scoring MIN_SCORE or more, and scores."""
        self._net.set_tensor(self._in, (rgb.astype(np.float32) / 127.5 - 1.0)[None])
        self._net.invoke()
        raw = self._net.get_tensor(self._boxes)[0]
        scores = 1 / (1 + np.exp(-np.clip(self._net.get_tensor(self._scores)[0, :, 0], -80, 80)))
        keep = scores >= MIN_SCORE
        r = raw[keep] / INPUT
        cx, cy = r[:, 0] + self._ax[keep], r[:, 1] + self._ay[keep]
        half_w, half_h = r[:, 2] / 2, r[:, 3] / 2
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1) * INPUT
        return boxes, scores[keep]

    def photo(self, image: Image.Image, long_side: int) -> np.ndarray:
        """Boxes in the photo's pixels: the photo scaled to `long_side`, tile by tile."""
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
        return _suppressed(np.concatenate(found), np.concatenate(scores)) / scale


def _suppressed(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    kept: list[int] = []
    for i in np.argsort(-scores):
        if all(_iou(boxes[i], boxes[j]) < SAME_FACE_IOU for j in kept):
            kept.append(int(i))
    return boxes[kept]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


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
            boxes = detector.photo(image, long_side)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sets_argument(parser)
    parser.add_argument("--model", type=Path, required=True, help="full-range BlazeFace .tflite")
    args = parser.parse_args()
    detector = BlazeFace(args.model)
    for name in chosen_sets(parser, args.sets):
        measure(detector, name)


if __name__ == "__main__":
    main()
