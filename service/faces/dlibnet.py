"""dlib's network files, read without dlib: its serialization format (dlib/serialize.h,
dlib/dnn/core.h, dlib/dnn/layers.h, dlib/cuda/tensor.h) and the layers the two networks the engine
runs are made of (encoder.py: the face encoder ResNet; cnn_detector.py: the CNN face detector)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


class ModelFormatError(ValueError):
    """The model file is not the dlib network this module knows how to run."""


# The layers, as this module runs them
@dataclass
class Conv:
    weights: F32  # (kh*kw*C, F), rows in (row, column, channel) order like the NHWC im2col
    bias: F32  # (F,)
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    relu: bool = False  # the relu above it, applied in place on the product


@dataclass(frozen=True)
class Affine:  # the trained batch-norm: a scale and a shift per channel, folded into Conv
    gamma: F32
    beta: F32


@dataclass(frozen=True)
class Pool:
    kind: str  # max_pool or avg_pool
    size: tuple[int, int]  # (0, 0): the whole input (avg_pool_everything)
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Fc:
    weights: F32  # (inputs, outputs): out = x @ weights, no bias


@dataclass
class Op:  # the layers without parameters
    kind: str  # tag, skip, add_prev, relu
    tag: int = 0  # for tag, skip and add_prev
    relu: bool = False  # for add_prev: the relu above it


Layer = Conv | Affine | Pool | Fc | Op


# dlib's serialization primitives
class Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelFormatError("the model file ends early")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def integer(self) -> int:
        # A control byte (low nibble: byte count; 0x80: negative), then the little-endian magnitude.
        control = self.take(1)[0]
        if not 1 <= control & 0x0F <= 8:
            raise ModelFormatError(f"bad integer control byte {control:#x} at {self.pos - 1}")
        value = int.from_bytes(self.take(control & 0x0F), "little")
        return -value if control & 0x80 else value

    def real(self) -> float:
        # float_details: mantissa * 2**exponent, each an integer as above; 32000+ are inf and nan.
        mantissa, exponent = self.integer(), self.integer()
        special = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}
        return special.get(exponent, math.ldexp(mantissa, exponent))

    def flag(self) -> bool:
        return self.take(1) == b"1"  # the character '0' or '1'

    def expect(self, *versions: str) -> str:
        found = self.take(self.integer()).decode("latin-1")
        if found not in versions:
            raise ModelFormatError(f"expected {' or '.join(versions)}, found {found!r}")
        return found

    def tensor(self) -> F32:
        # Version 2 holds raw little-endian float32 values; version 1 (a float_details per value)
        # predates the published models, so it is refused rather than parsed slowly.
        if (version := self.integer()) != 2:
            raise ModelFormatError(f"unsupported tensor version {version}")
        shape = self.shape()
        raw = self.take(4 * int(np.prod(shape)))
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        if self.integer() != 1:
            raise ModelFormatError("unsupported alias_tensor version")
        return self.shape()

    def shape(self) -> tuple[int, int, int, int]:  # num_samples, k (channels), rows, columns
        return (self.integer(), self.integer(), self.integer(), self.integer())

    def pair(self) -> tuple[int, int]:
        return (self.integer(), self.integer())


def read_con(r: Reader) -> Conv:
    version = r.expect("con_4", "con_5")
    params = r.tensor().ravel()
    filters = r.integer()
    size, stride, padding = r.pair(), r.pair(), r.pair()  # padding is stored: no need to guess
    shape = r.alias_tensor()  # (filters, channels, rows, columns)
    r.alias_tensor()  # the biases
    for _ in range(4):
        r.real()  # learning-rate and weight-decay multipliers: training only
    use_bias = r.flag() if version == "con_5" else True
    count = int(np.prod(shape))
    # dlib correlates (no kernel flip) with filters laid out (F, C, kh, kw).
    weights = params[:count].reshape(shape).transpose(2, 3, 1, 0).reshape(-1, filters)
    bias = params[count : count + filters] if use_bias else np.zeros(filters, np.float32)
    return Conv(np.ascontiguousarray(weights), bias.copy(), size, stride, padding)


def read_affine(r: Reader) -> Affine:
    r.expect("affine_")
    params = r.tensor().ravel()
    channels = int(np.prod(r.alias_tensor()))
    r.alias_tensor()  # beta
    if r.integer() != 0:  # CONV_MODE = 0: per channel, not per value
        raise ModelFormatError("the affine layer is not in convolution mode")
    return Affine(params[:channels].copy(), params[channels : 2 * channels].copy())


def read_fc(r: Reader) -> Fc:
    r.expect("fc_2")
    outputs, inputs = r.integer(), r.integer()
    params = r.tensor().ravel()
    r.alias_tensor(), r.alias_tensor()  # weights, biases
    if r.integer() != 1:  # FC_NO_BIAS = 1
        raise ModelFormatError("expected fc_no_bias")
    for _ in range(4):
        r.real()
    return Fc(params[: inputs * outputs].reshape(inputs, outputs).copy())


def read_layer(r: Reader, kind: str) -> Layer:
    if kind == "con":
        return read_con(r)
    if kind == "affine":
        return read_affine(r)
    if kind in ("max_pool", "avg_pool"):
        r.expect(f"{kind}_2")
        return Pool(kind, size=r.pair(), stride=r.pair(), padding=r.pair())
    if kind == "fc":
        return read_fc(r)
    if kind.startswith("add_prev"):  # add_prev1, add_prev2: which tag it adds is in the type
        r.expect("add_prev_")
        return Op("add_prev", int(kind[-1]))
    r.expect("relu_")
    return Op("relu")


def skip_training_state(r: Reader, version: int, on_input: bool) -> None:
    # add_layer stores three flags and its (empty) output and gradient tensors after the layer;
    # the layer sitting on the input layer stores its own variant (core.h).
    if not (2 <= version <= 3 if on_input else 1 <= version <= 2):
        raise ModelFormatError(f"unsupported add_layer version {version}")
    for _ in range(3):
        r.flag()
    for _ in range(3 if on_input or version == 2 else 2):
        r.tensor()
    if on_input and version == 3:
        r.integer()  # sample_expansion_factor


def folded(layers: list[Layer]) -> list[Layer]:
    """Fold each affine into the convolution below it, and each relu into the layer below it."""
    out: list[Layer] = []
    for layer in layers:
        below = out[-1] if out else None
        if isinstance(layer, Affine):
            if not isinstance(below, Conv) or below.relu:
                raise ModelFormatError("an affine layer must sit on a convolution")
            # (x @ W + b) * gamma + beta == x @ (W * gamma) + (b * gamma + beta)
            below.weights *= layer.gamma
            below.bias = below.bias * layer.gamma + layer.beta
        elif isinstance(layer, Op) and layer.kind == "relu":
            if isinstance(below, Op) and below.kind != "add_prev":
                below = None  # tag and skip are not computations a relu can be folded into
            if not isinstance(below, Conv | Op) or below.relu:
                raise ModelFormatError("a relu must sit on a convolution or an add_prev")
            below.relu = True
        else:
            out.append(layer)
    return out


def read_batch_norm(r: Reader) -> Affine:
    """A bn_con layer as dlib's affine_ reads it: the affine it is at inference, from the running
    statistics (layers.h, affine_'s constructor from a bn_)."""
    r.expect("bn_con2")
    params = r.tensor().ravel()
    channels = int(np.prod(r.alias_tensor()))
    r.alias_tensor()  # beta
    r.tensor(), r.tensor()  # the last training batch's means and inverse deviations
    running_means, running_variances = r.tensor().ravel(), r.tensor().ravel()
    r.integer(), r.integer()  # update count and window: training only
    for _ in range(4):
        r.real()  # learning-rate and weight-decay multipliers
    eps = np.float32(r.real())
    gamma = params[:channels] / np.sqrt(running_variances + eps)
    beta = params[channels : 2 * channels] - gamma * running_means
    return Affine(gamma.astype(np.float32), beta.astype(np.float32))
