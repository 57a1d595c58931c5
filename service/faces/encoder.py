"""dlib's face recognition ResNet run in numpy: the same 128-d descriptors, several times faster.

The `dlib-bin` wheel is built without BLAS, so its convolutions run on dlib's own matrix product
(~120 ms a face on one core). numpy's matrix product is OpenBLAS: each convolution below is one
im2col copy and one float32 `matmul`. The weights are read straight from dlib's model file, whose
layout is dlib's own serialization format (dlib/serialize.h, dlib/dnn/core.h, dlib/dnn/layers.h).
"""

from __future__ import annotations

import bz2
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import as_strided

CHIP_SIZE = 150  # input_rgb_image_sized<150>
CHIP_PADDING = 0.25  # what compute_face_descriptor passes to get_face_chip_details
DESCRIPTOR_SIZE = 128

Array = np.ndarray


class ModelFormatError(ValueError):
    """The model file is not the dlib network this module knows how to run."""


# ---------------------------------------------------------------------------------------------
# The network, as dnn_face_recognition_ex.cpp declares it, listed from the top (the loss side)
# down to the input: the order in which dlib writes the layers' version numbers.


@dataclass(frozen=True)
class _Op:
    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip
    arg: int = 0  # tag number for tag / skip / add_prev


def _block(stride: int) -> list[_Op]:
    # block<N,affine,stride> = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,...>>>>>
    del stride  # the stride is read back from the file; it only names the block here
    return [_Op("affine"), _Op("con"), _Op("relu"), _Op("affine"), _Op("con")]


def _ares() -> list[_Op]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [_Op("relu"), _Op("add_prev", 1), *_block(1), _Op("tag", 1)]


def _ares_down() -> list[_Op]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        _Op("relu"), _Op("add_prev", 2), _Op("avg_pool"), _Op("skip", 1), _Op("tag", 2),
        *_block(2), _Op("tag", 1),
    ]  # fmt: skip


def _network_top_down() -> list[_Op]:
    ops = [_Op("fc"), _Op("avg_pool")]  # fc_no_bias<128, avg_pool_everything<...>>
    ops += _ares_down()  # alevel0
    ops += _ares() + _ares() + _ares_down()  # alevel1 (256)
    ops += _ares() + _ares() + _ares_down()  # alevel2 (128)
    ops += _ares() * 3 + _ares_down()  # alevel3 (64)
    ops += _ares() * 3  # alevel4 (32)
    ops += [_Op("max_pool"), _Op("relu"), _Op("affine"), _Op("con")]
    return ops


_WRAPPERS = {"tag", "skip"}  # add_tag_layer / add_skip_layer: a version number and nothing more


# ---------------------------------------------------------------------------------------------
# dlib's serialization primitives (dlib/serialize.h)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelFormatError("the model file ends early")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        # A control byte (low nibble: byte count, 0x80: negative), then little-endian magnitude.
        control = self._take(1)[0]
        size = control & 0x0F
        if not 1 <= size <= 8:
            raise ModelFormatError(f"bad integer control byte {control:#x} at {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        # float_details: mantissa * 2**exponent, each written as an integer above.
        mantissa, exponent = self.int(), self.int()
        special = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}
        return special[exponent] if exponent in special else float(np.ldexp(mantissa, exponent))

    def bool(self) -> bool:
        return self._take(1) == b"1"  # written as the character '0' or '1'

    def string(self) -> str:
        return self._take(self.int()).decode("ascii", "replace")

    def expect(self, *versions: str) -> str:
        found = self.string()
        if found not in versions:
            raise ModelFormatError(f"expected {' or '.join(versions)}, found {found!r}")
        return found

    def tensor(self) -> Array:
        # Version 2 stores the values as raw little-endian float32; version 1 (per-value
        # float_details) predates every published model, so it is refused rather than parsed.
        version = self.int()
        if version != 2:
            raise ModelFormatError(f"unsupported tensor version {version}")
        shape = (self.int(), self.int(), self.int(), self.int())  # num_samples, k, nr, nc
        count = int(np.prod(shape))
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        if self.int() != 1:
            raise ModelFormatError("unsupported alias_tensor version")
        return (self.int(), self.int(), self.int(), self.int())


# ---------------------------------------------------------------------------------------------
# Reading the layers


@dataclass
class _Conv:
    weights: Array  # (kh*kw*C, F): rows ordered (row, column, channel) to match the NHWC im2col
    bias: Array  # (F,)
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    relu: bool = False  # a following relu, applied in place on the product


@dataclass
class _Pool:
    kind: str  # max_pool or avg_pool
    size: tuple[int, int]  # (0, 0): the whole input (avg_pool_everything)
    stride: tuple[int, int]
    padding: tuple[int, int]


Layer = _Conv | _Pool | _Op | Array  # an Array is the fc matrix; an _Op is relu/tag/skip/add_prev


def _read_con(r: _Reader) -> _Conv:
    version = r.expect("con_4", "con_5")
    params = r.tensor().ravel()
    filters = r.int()
    size = (r.int(), r.int())
    stride = (r.int(), r.int())
    padding = (r.int(), r.int())
    shape = r.alias_tensor()  # (filters, channels, rows, cols)
    r.alias_tensor()  # the biases' alias
    for _ in range(4):
        r.float()  # learning-rate and weight-decay multipliers: training only
    use_bias = r.bool() if version == "con_5" else True
    count = int(np.prod(shape))
    # dlib's filters are (F, C, kh, kw) and it correlates (no flip), as im2col below does.
    w = params[:count].reshape(shape).transpose(2, 3, 1, 0).reshape(-1, filters)
    bias = params[count : count + filters] if use_bias else np.zeros(filters, np.float32)
    return _Conv(np.ascontiguousarray(w), bias.copy(), size, stride, padding)


def _read_affine(r: _Reader) -> tuple[Array, Array]:
    r.expect("affine_")
    params = r.tensor().ravel()
    gamma, _beta = r.alias_tensor(), r.alias_tensor()
    if r.int() != 0:  # CONV_MODE (0): one scale and shift per channel, not per value
        raise ModelFormatError("affine layer is not in convolution mode")
    n = int(np.prod(gamma))
    return params[:n], params[n : 2 * n]


def _read_pool(r: _Reader, kind: str) -> _Pool:
    r.expect(f"{kind}_2")
    size = (r.int(), r.int())
    stride = (r.int(), r.int())
    return _Pool(kind, size, stride, (r.int(), r.int()))


def _read_fc(r: _Reader) -> Array:
    r.expect("fc_2")
    outputs, inputs = r.int(), r.int()
    params = r.tensor().ravel()
    r.alias_tensor(), r.alias_tensor()
    if r.int() != 1:  # FC_NO_BIAS
        raise ModelFormatError("expected fc_no_bias")
    for _ in range(4):
        r.float()
    return params[: inputs * outputs].reshape(inputs, outputs).copy()  # out = x @ W


def _read_layer_trailer(r: _Reader, version: int, on_input: bool) -> None:
    # add_layer's training state: three flags and empty gradient/output tensors.
    for _ in range(3):
        r.bool()
    for _ in range(3 if on_input or version >= 2 else 2):
        r.tensor()
    if on_input and version >= 3:
        r.int()  # _sample_expansion_factor


@dataclass(frozen=True)
class _Model:
    means: Array  # per-channel means subtracted from the 0..255 input
    layers: list[Layer]  # bottom-up


def _read_model(data: bytes) -> _Model:
    r = _Reader(data)
    if r.int() != 1:
        raise ModelFormatError("unsupported add_loss_layer version")
    r.expect("loss_metric_2")
    r.float(), r.float()  # margin and distance threshold: training only
    top_down = _network_top_down()
    versions = [r.int() for _ in top_down]  # each wrapper's version, outermost first
    r.expect("input_rgb_image_sized")
    means = np.array([r.float(), r.float(), r.float()], dtype=np.float32)
    if (r.int(), r.int()) != (CHIP_SIZE, CHIP_SIZE):
        raise ModelFormatError("the network input is not 150x150")
    layers: list[Layer] = []
    for index in reversed(range(len(top_down))):
        op, version = top_down[index], versions[index]
        if op.kind not in _WRAPPERS:
            layers.append(_read_details(r, op))
            _read_layer_trailer(r, version, on_input=index == len(top_down) - 1)
        else:
            layers.append(op)
    if r.pos != len(data):
        raise ModelFormatError(f"{len(data) - r.pos} unread bytes at the end of the model file")
    return _Model(means, _fused(layers))


def _read_details(r: _Reader, op: _Op) -> Layer:
    if op.kind == "con":
        return _read_con(r)
    if op.kind == "affine":
        gamma, beta = _read_affine(r)
        return np.stack([gamma, beta])
    if op.kind in ("max_pool", "avg_pool"):
        return _read_pool(r, op.kind)
    if op.kind == "fc":
        return _read_fc(r)
    r.expect(f"{op.kind}_")  # relu_, add_prev_: no parameters
    return op


def _fused(layers: list[Layer]) -> list[Layer]:
    """Fold each affine (the trained batch-norm) and the relu after it into the convolution."""
    out: list[Layer] = []
    for layer in layers:
        last = out[-1] if out else None
        if isinstance(layer, np.ndarray) and layer.ndim == 2 and layer.shape[0] == 2:
            if not isinstance(last, _Conv) or last.relu:
                raise ModelFormatError("an affine layer must follow a convolution")
            gamma, beta = layer
            last.weights *= gamma  # (x @ W + b) * g + beta == x @ (W * g) + (b * g + beta)
            last.bias = last.bias * gamma + beta
        elif isinstance(layer, _Op) and layer.kind == "relu" and isinstance(last, _Conv):
            last.relu = True
        else:
            out.append(layer)
    return out


def read_model(path: Path) -> _Model:
    data = path.read_bytes()
    if data[:3] == b"BZh":  # the model as dlib.net distributes it, before bunzip2
        data = bz2.decompress(data)
    return _read_model(data)


# ---------------------------------------------------------------------------------------------
# The forward pass, in NHWC float32


class _Workspace:
    """Scratch arrays reused across calls: fresh multi-megabyte arrays would be page-faulted in
    on every photo. Kept for one batch size at a time so memory stays ~6 MB a face."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...]], Array] = {}
        self._batch = 0

    def start(self, batch: int) -> None:
        if batch != self._batch:
            self._arrays.clear()
            self._batch = batch

    def zeros(self, name: str, shape: tuple[int, ...]) -> Array:
        # Only the interior of a padding buffer is ever written, so its zero border survives.
        key = (name, shape)
        if key not in self._arrays:
            self._arrays[key] = np.zeros(shape, np.float32)
        return self._arrays[key]


def _conv(x: Array, conv: _Conv, ws: _Workspace) -> Array:
    n, h, w, c = x.shape
    (kh, kw), (sy, sx), (py, px) = conv.size, conv.stride, conv.padding
    if py or px:  # dlib pads with zeros
        padded = ws.zeros("pad", (n, h + 2 * py, w + 2 * px, c))
        padded[:, py : py + h, px : px + w] = x
        x, h, w = padded, h + 2 * py, w + 2 * px
    ho, wo = (h - kh) // sy + 1, (w - kw) // sx + 1  # dlib: 1 + (in + 2*pad - k) / stride
    s = x.strides
    # Each window row (kw pixels x c channels) is contiguous in NHWC: copy it as one run.
    windows = as_strided(x, (n, ho, wo, kh, kw * c), (s[0], s[1] * sy, s[2] * sx, s[1], s[3]))
    cols = ws.zeros("cols", (n, ho, wo, kh, kw * c))
    np.copyto(cols, windows)
    out = np.matmul(cols.reshape(n * ho * wo, kh * kw * c), conv.weights)
    out += conv.bias
    if conv.relu:
        np.maximum(out, 0, out=out)
    return out.reshape(n, ho, wo, -1)


def _pool(x: Array, pool: _Pool) -> Array:
    n, h, w, c = x.shape
    if pool.size == (0, 0):  # avg_pool_everything
        return x.mean(axis=(1, 2), keepdims=True, dtype=np.float32)
    (kh, kw), (sy, sx) = pool.size, pool.stride
    if pool.padding != (0, 0):
        raise ModelFormatError("padded pooling is not implemented")
    ho, wo = (h - kh) // sy + 1, (w - kw) // sx + 1
    # One strided slice per window offset, combined pairwise: much faster than a reduction over
    # a 6-d strided view.
    taps = [x[:, i : i + sy * ho : sy, j : j + sx * wo : sx] for i in range(kh) for j in range(kw)]
    out = taps[0].copy()
    combine = np.maximum if pool.kind == "max_pool" else np.add
    for tap in taps[1:]:
        combine(out, tap, out=out)
    if pool.kind == "avg_pool":
        out *= np.float32(1 / (kh * kw))
    return out


def _add_zero_padded(a: Array, b: Array) -> Array:
    # dlib's add_prev adds tensors of different sizes as if each were zero-padded to the larger:
    # the downsampling shortcut has fewer channels, and in one block more rows and columns too.
    if a.shape == b.shape:
        return a + b
    out = np.zeros(np.maximum(a.shape, b.shape), np.float32)
    out[: a.shape[0], : a.shape[1], : a.shape[2], : a.shape[3]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out


def _forward(x: Array, layers: list[Layer], ws: _Workspace) -> Array:
    tags: dict[int, Array] = {}
    for layer in layers:
        if isinstance(layer, _Conv):
            x = _conv(x, layer, ws)
        elif isinstance(layer, _Pool):
            x = _pool(x, layer)
        elif isinstance(layer, np.ndarray):
            x = x.reshape(x.shape[0], -1) @ layer
        elif layer.kind == "tag":
            tags[layer.arg] = x
        elif layer.kind == "skip":
            x = tags[layer.arg]
        elif layer.kind == "add_prev":
            x = _add_zero_padded(x, tags[layer.arg])
        elif layer.kind == "relu":
            x = np.maximum(x, 0, out=x)
    return x


class NumpyFaceEncoder:
    def __init__(self, model_path: Path) -> None:
        self._model = read_model(model_path)
        self._ws = _Workspace()

    def encode(self, chips: Array) -> Array:
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected (N, 150, 150, 3) chips, got {chips.shape}")
        x = (chips.astype(np.float32) - self._model.means) / np.float32(256)
        self._ws.start(len(chips))
        return _forward(x, self._model.layers, self._ws).astype(np.float64)
