"""The ``.bnn`` model file: a safetensors file with the network's graph as JSON in its metadata.

This module is shared by :mod:`binarynet.export` (which writes files) and :mod:`binarynet.engine`
(which runs them). It needs only NumPy and the ``safetensors`` package: never torch.

File layout
-----------
A standard safetensors file (8-byte little-endian header length, JSON header, raw tensor data;
no pickle anywhere). Its ``__metadata__`` holds two strings:

``"binarynet"``
    the graph, a JSON object::

        {"format": "binarynet-bnn", "version": 1,
         "input": {"layout": "NHWC" | "NHW" | "NF", "shape": [H, W, C] | [H, W] | [F],
                   "dtype": "uint8", "zero_point": 128, "scale": 0.0078125},
         "preprocess": null | {"kind": "gcn-zca", "version": 1, ...},
         "num_classes": 10,
         "ops": [ {"type": ..., ...}, ... ],
         "provenance": {"binarynet_version": "0.1.0", "model": "mnist-mlp",
                        "model_kwargs": {...}, ...}}

``"binarynet.sha256"``
    SHA-256 (hex) of the graph string followed by every tensor (name, dtype, shape, bytes) in
    name order, so that any flipped byte of the graph or of the data is detected on load.

``preprocess`` is the JSON part of the state of the :mod:`binarynet.preprocess` object the
network was trained behind (GCN + ZCA whitening for the ConvNets, say); its arrays are tensors
named ``preprocess.<key>`` (``preprocess.zca_whitening``, ...). It maps raw uint8 images to the
uint8 images the network takes (the input below); null when the network takes raw images.

Values and ops
--------------
The input is a batch of uint8 images ``[N, *input.shape]`` (channels last), standing for the
fixed-point values x = (p − zero_point)·scale. Every op maps one per-example value to the next;
values are of four kinds:

- ``u8``: the input pixels p;
- ``bits``: ±1 values of logical shape S, packed along the last axis into uint64 words
  (bit 1 = −1, element k in bit k % 64 of word k / 64, padding bits zero), stored as
  ``S[:-1] + [ceil(S[-1] / 64)]`` words;
- ``int32``: exact integer pre-activations y, |y| ≤ R (R, the reachable bound, is known
  statically from the layer's reduction size);
- ``float32``: the class scores.

Ops (tensor fields name tensors of the file):

``dense`` {out_features, weight}
    u8 or bits of any shape S → int32 [O]: y_o = Σ_i x̃_i·w_{o,i} over all K = ∏S elements in
    C order, with x̃ = p − zero_point for u8 input and x̃ = ±1 for bits, w = ±1. Weight (uint64):
    ``[O, ceil(K/64)]`` for u8 input; ``[O, *S[:-1], ceil(S[-1]/64)]`` for bits (each position's
    channel group packed and padded like the activations). R = K·max(zp, 255 − zp) for u8 input,
    K for bits.
``conv2d`` {out_channels, kernel_size [kh, kw], stride [sh, sw], padding [ph, pw], weight}
    u8 or bits [H, W, C] → int32 [Ho, Wo, O], Ho = ⌊(H + 2ph − kh)/sh⌋ + 1: the correlation of
    torch's Conv2d, with padded taps contributing 0 (a pixel equal to zero_point for u8 input,
    the third value 0 for bits). Weight (uint64): ``[O, ceil(kh·kw·C/64)]`` packed along the
    (i, j, c) tap order for u8 input; ``[O, kh, kw, ceil(C/64)]`` for bits.
    R = kh·kw·C·max(zp, 255 − zp) for u8 input, kh·kw·C for bits.
``maxpool2d`` {kernel_size [kh, kw], stride [sh, sw]}
    int32 [H, W, C] → int32 [Ho, Wo, C], the window maximum, no padding, floor mode.
``threshold`` {lo, hi}
    int32 [..., C] → bits [..., C]: +1 iff lo_c ≤ y ≤ hi_c (lo, hi: int32 [C]). This is batch
    norm followed by sign(), folded by :mod:`binarynet.export`.
``scores`` {input_scale, bias, scale, shift}
    int32 [C] → float32 [C], the last op: in float32, one rounding per step,
    v = y·input_scale; v = v + bias (when ``bias`` is not null); v = v·scale; v = v + shift.
    This is exactly the torch model's last BinaryLinear (+ bias) → batch norm.

Loading (:func:`load`) validates the whole file before the engine allocates anything: the
safetensors header, the format and version, the checksum, every op and its parameters, that
shapes chain from the input to ``num_classes`` scores, every tensor's dtype and shape against
its op, that no tensor is left unused, the preprocessor's state, that padding bits of packed
weights are zero and float parameters finite, and size limits (|y| < 2²⁴ so that torch's
float32 sums were exact). Any problem raises :class:`BNNFileError` (a ``ValueError``) naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from binarynet.atomic import atomic_write_bytes

__all__ = [
    "FORMAT",
    "VERSION",
    "BNNFile",
    "BNNFileError",
    "Conv2d",
    "Dense",
    "Graph",
    "InputSpec",
    "MaxPool2d",
    "Op",
    "Scores",
    "Threshold",
    "ValueInfo",
    "affine_eval",
    "load",
    "pack_bits",
    "save",
    "unpack_bits",
]

FORMAT = "binarynet-bnn"
VERSION = 1
GRAPH_KEY = "binarynet"
PREPROCESS_PREFIX = "preprocess."
CHECKSUM_KEY = "binarynet.sha256"

INT32_MIN = int(np.iinfo(np.int32).min)
INT32_MAX = int(np.iinfo(np.int32).max)

MAX_HEADER_BYTES = 64 << 20
"""Largest safetensors header accepted (the graph and the tensor table)."""
MAX_EXACT = (1 << 24) - 1
"""Largest |y| of an integer pre-activation: torch's float32 sums are exact below 2²⁴."""
MAX_VALUE_BYTES = 1 << 28
"""Largest per-example intermediate value (bytes) the engine agrees to allocate."""
MAX_DIM = 1 << 16
"""Largest input or kernel dimension accepted."""
MAX_OPS = 4096

# safetensors dtype names used by the format.
_DTYPES: dict[str, np.dtype] = {
    "U8": np.dtype(np.uint8),
    "U64": np.dtype("<u8"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}
_LAYOUTS = {1: "NF", 2: "NHW", 3: "NHWC"}


class BNNFileError(ValueError):
    """A ``.bnn`` file (or a graph about to be written) is malformed or unsupported."""


# --------------------------------------------------------------------------------------------
# Bit packing (NumPy): the bit convention of binarynet, for writing weights and for checks.
# --------------------------------------------------------------------------------------------


def _check_little_endian() -> None:
    if sys.byteorder != "little":  # pragma: no cover - every supported platform
        raise RuntimeError("binarynet's packed format assumes a little-endian machine")


def pack_bits(negative: np.ndarray) -> np.ndarray:
    """Pack booleans ``[..., K]`` (True = −1) into uint64 ``[..., ceil(K/64)]``.

    Element k goes to bit k % 64 of word k / 64; the padding bits of the last word are zero.
    This is the convention of the compiled kernels (``csrc/bitpack.h``).
    """
    _check_little_endian()
    negative = np.asarray(negative, dtype=bool)
    k = negative.shape[-1]
    words = -(-k // 64)
    pad = words * 64 - k
    if pad:
        negative = np.concatenate(
            [negative, np.zeros((*negative.shape[:-1], pad), dtype=bool)], axis=-1
        )
    packed = np.packbits(negative, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.uint64)


def unpack_bits(packed: np.ndarray, k: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: uint64 ``[..., W]`` → booleans ``[..., k]`` (True = −1)."""
    _check_little_endian()
    as_bytes = np.ascontiguousarray(packed, dtype=np.uint64).view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, count=k, bitorder="little").astype(bool)


def affine_eval(
    y: np.ndarray,
    input_scale: float,
    bias: np.ndarray | None,
    scale: np.ndarray,
    shift: np.ndarray,
) -> np.ndarray:
    """The ``scores`` op (and batch norm before sign): f(y) = fl(fl(fl(fl(y·input_scale) + b)
    ·scale) + shift) in float32, one rounding per operation in torch's order, per channel (the
    last axis). ``y``: integers with |y| < 2²⁴, so that float32(y) is exact."""
    v = np.asarray(y).astype(np.float32) * np.float32(input_scale)
    if bias is not None:
        v = v + bias.astype(np.float32, copy=False)
    v = v * scale.astype(np.float32, copy=False)
    return v + shift.astype(np.float32, copy=False)


def _words(k: int) -> int:
    return -(-k // 64)


# --------------------------------------------------------------------------------------------
# Graph
# --------------------------------------------------------------------------------------------


def _fail(where: str, message: str) -> BNNFileError:
    return BNNFileError(f"{where}: {message}" if where else message)


def _int(obj: Mapping[str, Any], key: str, where: str, lo: int, hi: int) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"{key!r} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise _fail(where, f"{key!r} = {value} is out of range; expected {lo}..{hi}")
    return value


def _pair(obj: Mapping[str, Any], key: str, where: str, lo: int, hi: int) -> tuple[int, int]:
    value = obj.get(key)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
    ):
        raise _fail(where, f"{key!r} must be a list of two integers, got {value!r}")
    for v in value:
        if not lo <= v <= hi:
            raise _fail(where, f"{key!r} = {value} is out of range; expected values in {lo}..{hi}")
    return value[0], value[1]


def _name(obj: Mapping[str, Any], key: str, where: str, optional: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{key!r} must name a tensor (a non-empty string), got {value!r}")
    return value


def _power_of_two(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"{key!r} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise _fail(where, f"{key!r} must be a positive power of two, got {value!r}")
    mantissa, exponent = math.frexp(value)
    if mantissa != 0.5 or not -60 <= exponent <= 60:
        raise _fail(where, f"{key!r} must be a power of two in 2^-60..2^60, got {value!r}")
    return value


def _check_keys(obj: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise _fail(where, f"unknown fields {unknown}; expected only {sorted(allowed)}")


@dataclass(frozen=True)
class InputSpec:
    """The model's input: uint8 ``[N, *shape]``, channels last, x = (p − zero_point)·scale.

    ``layout`` is ``"NHWC"`` for images with channels (torch takes them NCHW), ``"NHW"`` for
    grey images without a channel axis and ``"NF"`` for flat feature vectors.
    """

    shape: tuple[int, ...]
    zero_point: int = 128
    scale: float = 2.0**-7

    @property
    def layout(self) -> str:
        return _LAYOUTS[len(self.shape)]

    def to_json(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "shape": list(self.shape),
            "dtype": "uint8",
            "zero_point": self.zero_point,
            "scale": self.scale,
        }

    @classmethod
    def from_json(cls, obj: Any) -> InputSpec:
        where = "input"
        if not isinstance(obj, dict):
            raise _fail(where, f"must be an object, got {type(obj).__name__}")
        _check_keys(obj, ("layout", "shape", "dtype", "zero_point", "scale"), where)
        shape = obj.get("shape")
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= 3
            or any(isinstance(d, bool) or not isinstance(d, int) for d in shape)
        ):
            raise _fail(where, f"'shape' must be a list of 1 to 3 integers, got {shape!r}")
        if any(not 1 <= d <= MAX_DIM for d in shape):
            raise _fail(where, f"'shape' {shape} has a dimension outside 1..{MAX_DIM}")
        if math.prod(shape) > MAX_VALUE_BYTES:
            raise _fail(where, f"'shape' {shape} is too large ({math.prod(shape)} bytes)")
        layout = obj.get("layout")
        if layout != _LAYOUTS[len(shape)]:
            raise _fail(
                where,
                f"'layout' {layout!r} disagrees with shape {shape}; "
                f"expected {_LAYOUTS[len(shape)]!r}",
            )
        if obj.get("dtype") != "uint8":
            raise _fail(where, f"'dtype' must be 'uint8', got {obj.get('dtype')!r}")
        zero_point = _int(obj, "zero_point", where, 0, 255)
        scale = _power_of_two(obj.get("scale"), where, "scale")
        return cls(tuple(shape), zero_point, scale)


@dataclass(frozen=True)
class ValueInfo:
    """A per-example value between two ops: its kind, logical shape and integer bound.

    ``kind`` is ``"u8"``, ``"bits"``, ``"int32"`` or ``"float32"``; ``bound`` is the reachable
    bound R (|y| ≤ R) of an ``int32`` value, else 0.
    """

    kind: str
    shape: tuple[int, ...]
    bound: int = 0

    @property
    def nbytes(self) -> int:
        """Bytes of one example of this value as the engine stores it."""
        if self.kind == "bits":
            return 8 * math.prod(self.shape[:-1]) * _words(self.shape[-1])
        itemsize = {"u8": 1, "int32": 4, "float32": 4}[self.kind]
        return itemsize * math.prod(self.shape)

    def describe(self) -> str:
        dims = "×".join(map(str, self.shape))
        return f"{self.kind}[{dims}]"


class Op:
    """Base of the graph's ops; each subclass documents its maths in the module docstring."""

    type: str = ""
    fields: tuple[str, ...] = ()
    tensor_fields: tuple[str, ...] = ()

    def tensors(self) -> dict[str, str]:
        """{field: tensor name} of the tensors this op uses."""
        names = {f: getattr(self, f) for f in self.tensor_fields}
        return {f: n for f, n in names.items() if n is not None}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in self.fields:
            value = getattr(self, f)
            out[f] = list(value) if isinstance(value, tuple) else value
        if getattr(self, "source", None) is not None:
            out["source"] = self.source  # type: ignore[attr-defined]
        return out

    def infer(
        self, x: ValueInfo, spec: InputSpec, tensors: Mapping[str, tuple[str, tuple[int, ...]]]
    ) -> ValueInfo:
        """The output value for input ``x``; checks this op's tensors' dtypes and shapes."""
        raise NotImplementedError


def _expect_tensor(
    tensors: Mapping[str, tuple[str, tuple[int, ...]]],
    name: str,
    dtype: str,
    shape: tuple[int, ...],
    where: str,
) -> None:
    if name not in tensors:
        raise _fail(where, f"tensor {name!r} is missing from the file")
    found_dtype, found_shape = tensors[name]
    if found_dtype != dtype:
        raise _fail(where, f"tensor {name!r} has dtype {found_dtype}, expected {dtype}")
    if tuple(found_shape) != tuple(shape):
        raise _fail(where, f"tensor {name!r} has shape {list(found_shape)}, expected {list(shape)}")


def _bound_check(bound: int, where: str) -> int:
    if bound > MAX_EXACT:
        raise _fail(
            where,
            f"pre-activations reach ±{bound}, beyond ±{MAX_EXACT}: the torch model's float32 "
            "sums would not be exact",
        )
    return bound


def _input_multiplier(spec: InputSpec) -> int:
    return max(spec.zero_point, 255 - spec.zero_point)


@dataclass(frozen=True)
class Dense(Op):
    """``dense``: a binary fully connected layer (see the module docstring)."""

    out_features: int
    weight: str
    source: str | None = None
    type = "dense"
    fields = ("out_features", "weight")
    tensor_fields = ("weight",)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Dense:
        _check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            _int(obj, "out_features", where, 1, MAX_EXACT),
            _name(obj, "weight", where),  # type: ignore[arg-type]
            _source(obj, where),
        )

    def weight_shape(self, x: ValueInfo) -> tuple[int, ...]:
        if x.kind == "u8":
            return (self.out_features, _words(math.prod(x.shape)))
        return (self.out_features, *x.shape[:-1], _words(x.shape[-1]))

    def infer(self, x, spec, tensors):
        where = ""
        if x.kind not in ("u8", "bits"):
            raise _fail(where, f"takes uint8 or bits input, got {x.describe()}")
        _expect_tensor(tensors, self.weight, "U64", self.weight_shape(x), where)
        k = math.prod(x.shape)
        bound = k * (_input_multiplier(spec) if x.kind == "u8" else 1)
        return ValueInfo("int32", (self.out_features,), _bound_check(bound, where))


@dataclass(frozen=True)
class Conv2d(Op):
    """``conv2d``: a binary 2-D convolution (see the module docstring)."""

    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    weight: str
    source: str | None = None
    type = "conv2d"
    fields = ("out_channels", "kernel_size", "stride", "padding", "weight")
    tensor_fields = ("weight",)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Conv2d:
        _check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            _int(obj, "out_channels", where, 1, MAX_EXACT),
            _pair(obj, "kernel_size", where, 1, MAX_DIM),
            _pair(obj, "stride", where, 1, MAX_DIM),
            _pair(obj, "padding", where, 0, MAX_DIM),
            _name(obj, "weight", where),  # type: ignore[arg-type]
            _source(obj, where),
        )

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def weight_shape(self, x: ValueInfo) -> tuple[int, ...]:
        kh, kw = self.kernel_size
        c = x.shape[-1]
        if x.kind == "u8":
            return (self.out_channels, _words(kh * kw * c))
        return (self.out_channels, kh, kw, _words(c))

    def infer(self, x, spec, tensors):
        where = ""
        if x.kind not in ("u8", "bits") or len(x.shape) != 3:
            raise _fail(where, f"takes uint8 or bits [H, W, C] input, got {x.describe()}")
        h, w, c = x.shape
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if h + 2 * ph < kh or w + 2 * pw < kw:
            raise _fail(
                where,
                f"kernel {list(self.kernel_size)} does not fit the padded input "
                f"{h + 2 * ph}×{w + 2 * pw}",
            )
        ho, wo = self.output_hw(h, w)
        _expect_tensor(tensors, self.weight, "U64", self.weight_shape(x), where)
        taps = kh * kw * c
        if x.kind == "u8" and ho * wo * taps > MAX_VALUE_BYTES:
            # The engine runs a uint8 convolution on its im2col patches: bound them like values,
            # so that a small file cannot make one image need terabytes.
            raise _fail(
                where,
                f"its uint8 input patches (im2col, {ho}×{wo} pixels × {taps} taps) need "
                f"{ho * wo * taps} bytes per example, more than the limit of {MAX_VALUE_BYTES}",
            )
        bound = taps * (_input_multiplier(spec) if x.kind == "u8" else 1)
        return ValueInfo("int32", (ho, wo, self.out_channels), _bound_check(bound, where))


@dataclass(frozen=True)
class MaxPool2d(Op):
    """``maxpool2d``: window maximum of integer pre-activations (no padding, floor mode)."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    source: str | None = None
    type = "maxpool2d"
    fields = ("kernel_size", "stride")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> MaxPool2d:
        _check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            _pair(obj, "kernel_size", where, 1, MAX_DIM),
            _pair(obj, "stride", where, 1, MAX_DIM),
            _source(obj, where),
        )

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (h - kh) // sh + 1, (w - kw) // sw + 1

    def infer(self, x, spec, tensors):
        where = ""
        if x.kind != "int32" or len(x.shape) != 3:
            raise _fail(where, f"takes int32 [H, W, C] input, got {x.describe()}")
        h, w, c = x.shape
        kh, kw = self.kernel_size
        if kh > h or kw > w:
            raise _fail(where, f"window {list(self.kernel_size)} is larger than the input {h}×{w}")
        return ValueInfo("int32", (*self.output_hw(h, w), c), x.bound)


@dataclass(frozen=True)
class Threshold(Op):
    """``threshold``: +1 iff lo ≤ y ≤ hi per channel (batch norm + sign, folded)."""

    lo: str
    hi: str
    source: str | None = None
    type = "threshold"
    fields = ("lo", "hi")
    tensor_fields = ("lo", "hi")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Threshold:
        _check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            _name(obj, "lo", where),  # type: ignore[arg-type]
            _name(obj, "hi", where),  # type: ignore[arg-type]
            _source(obj, where),
        )

    def infer(self, x, spec, tensors):
        where = ""
        if x.kind != "int32":
            raise _fail(where, f"takes int32 input, got {x.describe()}")
        c = x.shape[-1]
        _expect_tensor(tensors, self.lo, "I32", (c,), where)
        _expect_tensor(tensors, self.hi, "I32", (c,), where)
        return ValueInfo("bits", x.shape)


@dataclass(frozen=True)
class Scores(Op):
    """``scores``: the float32 class scores of the last layer (see the module docstring)."""

    input_scale: float
    bias: str | None
    scale: str
    shift: str
    source: str | None = None
    type = "scores"
    fields = ("input_scale", "bias", "scale", "shift")
    tensor_fields = ("bias", "scale", "shift")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Scores:
        _check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            _power_of_two(obj.get("input_scale"), where, "input_scale"),
            _name(obj, "bias", where, optional=True),
            _name(obj, "scale", where),  # type: ignore[arg-type]
            _name(obj, "shift", where),  # type: ignore[arg-type]
            _source(obj, where),
        )

    def infer(self, x, spec, tensors):
        where = ""
        if x.kind != "int32" or len(x.shape) != 1:
            raise _fail(where, f"takes int32 [C] input, got {x.describe()}")
        (c,) = x.shape
        for name in self.tensors().values():
            _expect_tensor(tensors, name, "F32", (c,), where)
        return ValueInfo("float32", (c,))


def _source(obj: Mapping[str, Any], where: str) -> str | None:
    value = obj.get("source")
    if value is not None and not isinstance(value, str):
        raise _fail(where, f"'source' must be a string, got {value!r}")
    return value


def op_label(i: int, op: Op) -> str:
    """``op 3 (conv2d, torch module '4')``: how messages name an op."""
    source = getattr(op, "source", None)
    return f"op {i} ({op.type}" + (f", torch module {source!r})" if source else ")")


OP_TYPES: dict[str, type[Op]] = {
    cls.type: cls for cls in (Dense, Conv2d, MaxPool2d, Threshold, Scores)
}


@dataclass(frozen=True)
class Graph:
    """A model's graph: input spec, ops in order, class count and provenance."""

    input: InputSpec
    ops: tuple[Op, ...]
    num_classes: int
    provenance: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "input": self.input.to_json(),
            "preprocess": self.preprocess,
            "num_classes": self.num_classes,
            "ops": [op.to_json() for op in self.ops],
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Graph:
        if not isinstance(obj, dict):
            raise BNNFileError(f"the graph must be a JSON object, got {type(obj).__name__}")
        if obj.get("format") != FORMAT:
            raise BNNFileError(
                f"not a binarynet model: format {obj.get('format')!r}, expected {FORMAT!r}"
            )
        version = obj.get("version")
        if version != VERSION:
            raise BNNFileError(
                f"unsupported .bnn version {version!r}: this binarynet reads version {VERSION}"
            )
        _check_keys(
            obj,
            ("format", "version", "input", "preprocess", "num_classes", "ops", "provenance"),
            "graph",
        )
        spec = InputSpec.from_json(obj.get("input"))
        num_classes = _int(obj, "num_classes", "graph", 1, MAX_EXACT)
        ops_json = obj.get("ops")
        if not isinstance(ops_json, list) or not 1 <= len(ops_json) <= MAX_OPS:
            raise BNNFileError(f"graph: 'ops' must be a list of 1..{MAX_OPS} ops")
        ops: list[Op] = []
        for i, op in enumerate(ops_json):
            where = f"op {i}"
            if not isinstance(op, dict):
                raise _fail(where, f"must be an object, got {type(op).__name__}")
            kind = op.get("type")
            if not isinstance(kind, str) or kind not in OP_TYPES:
                raise _fail(where, f"unknown op type {kind!r}; expected one of {sorted(OP_TYPES)}")
            ops.append(OP_TYPES[kind].from_json(op, where))  # type: ignore[attr-defined]
        provenance = obj.get("provenance", {})
        if not isinstance(provenance, dict):
            raise BNNFileError(f"graph: 'provenance' must be an object, got {provenance!r}")
        preprocess = obj.get("preprocess")
        if preprocess is not None and not isinstance(preprocess, dict):
            raise BNNFileError(f"graph: 'preprocess' must be an object or null, got {preprocess!r}")
        return cls(spec, tuple(ops), num_classes, provenance, preprocess)

    def infer(self, tensors: Mapping[str, tuple[str, tuple[int, ...]]]) -> list[ValueInfo]:
        """Check that shapes chain from the input to the scores; the value before each op and
        after the last one (``len(ops) + 1`` entries). ``tensors`` maps names to
        (safetensors dtype, shape); every tensor must be used by exactly one op field."""
        value = ValueInfo("u8", self.input.shape)
        values = [value]
        used: dict[str, str] = {}
        for i, op in enumerate(self.ops):
            where = op_label(i, op)
            try:
                value = op.infer(value, self.input, tensors)
            except BNNFileError as exc:
                raise _fail(where, str(exc)) from None
            if value.nbytes > MAX_VALUE_BYTES:
                raise _fail(
                    where,
                    f"its output {value.describe()} needs {value.nbytes} bytes per example, "
                    f"more than the limit of {MAX_VALUE_BYTES}",
                )
            for name in op.tensors().values():
                if name in used:
                    raise _fail(where, f"tensor {name!r} is already used by another op")
                used[name] = op.type
            if value.kind == "float32" and i != len(self.ops) - 1:
                raise _fail(where, "'scores' must be the last op")
            values.append(value)
        if value.kind != "float32":
            raise BNNFileError(
                f"the graph ends with {value.describe()}; expected float32 scores from a "
                "'scores' op"
            )
        if value.shape != (self.num_classes,):
            raise BNNFileError(
                f"the graph produces {value.shape[0]} scores but num_classes is {self.num_classes}"
            )
        unused = sorted(
            name
            for name in set(tensors) - set(used)
            if self.preprocess is None or not name.startswith(PREPROCESS_PREFIX)
        )
        if unused:
            raise BNNFileError(f"tensors not used by any op: {unused}")
        return values


# --------------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------------


def _checksum(graph_text: str, tensors: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(graph_text.encode("utf-8"))
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        h.update(
            json.dumps(
                [name, _DTYPE_NAMES.get(array.dtype, array.dtype.str), list(array.shape)]
            ).encode("utf-8")
        )
        h.update(array.tobytes())
    return h.hexdigest()


def _tensor_table(tensors: Mapping[str, np.ndarray]) -> dict[str, tuple[str, tuple[int, ...]]]:
    table = {}
    for name, array in tensors.items():
        dtype = np.dtype(array.dtype)
        if dtype not in _DTYPE_NAMES:
            raise BNNFileError(
                f"tensor {name!r} has dtype {array.dtype}; expected one of uint8, uint64, "
                "int32, float32"
            )
        table[name] = (_DTYPE_NAMES[dtype], tuple(array.shape))
    return table


@dataclass(frozen=True)
class BNNFile:
    """A validated ``.bnn`` file.

    Attributes:
        graph: the graph.
        tensors: every tensor by name (the preprocessor's arrays under ``preprocess.*``).
        values: the value before each op and after the last (``len(graph.ops) + 1`` entries).
        preprocessor: the fitted :mod:`binarynet.preprocess` object the model was trained
            behind (its ``transform`` maps raw uint8 images to the network's input), or None.
        size: the file's size in bytes (0 before it is written).
    """

    graph: Graph
    tensors: dict[str, np.ndarray]
    values: list[ValueInfo]
    preprocessor: Any | None
    size: int = 0


def _load_preprocessor(graph: Graph, tensors: Mapping[str, np.ndarray]) -> Any | None:
    """Rebuild the preprocessor from the graph's JSON part and its ``preprocess.*`` tensors."""
    if graph.preprocess is None:
        return None
    from binarynet.preprocess import load_preprocessor

    state: dict[str, Any] = dict(graph.preprocess)
    for name, array in tensors.items():
        if name.startswith(PREPROCESS_PREFIX):
            key = name[len(PREPROCESS_PREFIX) :]
            if key in state:
                raise BNNFileError(f"preprocess: {key!r} is both a JSON field and a tensor")
            state[key] = array
    try:
        pre = load_preprocessor(state)
    except (ValueError, TypeError, KeyError) as exc:
        raise BNNFileError(f"preprocess: {exc}") from None
    image_shape = getattr(pre, "image_shape", None)
    if image_shape is not None and tuple(image_shape) != graph.input.shape:
        raise BNNFileError(
            f"preprocess: it takes images of shape {list(image_shape)} but the input is "
            f"{list(graph.input.shape)}"
        )
    # One blank image through it: the preprocessor must take the model's input and give uint8
    # images of the same shape (PixelScaling refuses flat features, for one).
    shape = (1, *graph.input.shape)
    try:
        probe = np.asarray(pre.transform(np.zeros(shape, np.uint8)))
    except (ValueError, TypeError) as exc:
        raise BNNFileError(
            f"preprocess: it cannot take the model's input {list(graph.input.shape)} ({exc})"
        ) from None
    if probe.dtype != np.uint8 or probe.shape != shape:
        raise BNNFileError(
            f"preprocess: it maps the input {list(shape)} to {probe.dtype} {list(probe.shape)}, "
            "expected uint8 of the same shape"
        )
    return pre


def _validate(graph: Graph, tensors: Mapping[str, np.ndarray], where: str) -> BNNFile:
    """Everything but the file's framing: the graph against the tensors, then their values."""
    try:
        values = graph.infer(_tensor_table(tensors))
        _check_tensor_values(graph, values, tensors)
        pre = _load_preprocessor(graph, tensors)
    except BNNFileError as exc:
        raise BNNFileError(f"{where}: {exc}") from None
    return BNNFile(graph, dict(tensors), values, pre)


def save(
    path: str | os.PathLike[str],
    graph: Graph | Mapping[str, Any],
    tensors: Mapping[str, np.ndarray],
    *,
    validate: bool = True,
) -> int:
    """Write ``graph`` (a :class:`Graph` or its JSON form) and ``tensors`` as a ``.bnn`` file,
    atomically; returns its size.

    With ``validate`` (the default) the file is checked exactly as :func:`load` would check it
    before anything is written; ``validate=False`` exists for tests that write broken files.
    """
    arrays = {name: np.ascontiguousarray(a) for name, a in tensors.items()}
    graph_json = graph.to_json() if isinstance(graph, Graph) else dict(graph)
    graph_text = json.dumps(graph_json, separators=(",", ":"), allow_nan=False)
    if validate:
        _validate(Graph.from_json(json.loads(graph_text)), arrays, str(path))
    import safetensors.numpy

    metadata = {GRAPH_KEY: graph_text, CHECKSUM_KEY: _checksum(graph_text, arrays)}
    data = safetensors.numpy.save(arrays, metadata=metadata)
    atomic_write_bytes(path, lambda f: f.write(data))
    return len(data)


def _parse_header(data: bytes, where: str) -> tuple[dict[str, Any], int]:
    """The safetensors JSON header of ``data`` and the offset where tensor data begins."""
    if len(data) < 8:
        raise BNNFileError(f"{where}: truncated file ({len(data)} bytes, not even a header)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise BNNFileError(f"{where}: header length {n} exceeds {MAX_HEADER_BYTES} bytes")
    if 8 + n > len(data):
        raise BNNFileError(
            f"{where}: truncated file: the header claims {n} bytes but only {len(data) - 8} follow"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the interpreter's recursion limit.
        raise BNNFileError(f"{where}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise BNNFileError(f"{where}: corrupt safetensors header (not a JSON object)")
    return header, 8 + n


def _tensor_entries(
    header: dict[str, Any], data_len: int, where: str
) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """{name: (dtype, shape, begin, end)} of the header's tensor table, checked against the data
    size (so a lying header cannot make anything allocate)."""
    entries = {}
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        bad = f"{where}: tensor {name!r}"
        if not isinstance(entry, dict):
            raise BNNFileError(f"{bad}: corrupt entry {entry!r}")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise BNNFileError(
                f"{bad} has dtype {dtype!r}; a .bnn file holds only {sorted(_DTYPES)}"
            )
        if not isinstance(shape, list) or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape
        ):
            raise BNNFileError(f"{bad}: corrupt shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or any(isinstance(o, bool) or not isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
        ):
            raise BNNFileError(
                f"{bad}: data offsets {offsets!r} are outside the {data_len} data bytes "
                "(truncated file?)"
            )
        nbytes = math.prod(shape) * _DTYPES[dtype].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise BNNFileError(
                f"{bad}: shape {shape} of {dtype} needs {nbytes} bytes, the file gives it "
                f"{offsets[1] - offsets[0]}"
            )
        entries[name] = (dtype, tuple(shape), offsets[0], offsets[1])
        spans.append((offsets[0], offsets[1]))
    spans.sort()
    position = 0
    for begin, end in spans:
        if begin != position:
            raise BNNFileError(f"{where}: tensor data overlaps or has gaps at byte {begin}")
        position = end
    if position != data_len:
        raise BNNFileError(
            f"{where}: {data_len - position} bytes after the last tensor (corrupt file?)"
        )
    return entries


def _check_tensor_values(
    graph: Graph, values: list[ValueInfo], tensors: Mapping[str, np.ndarray]
) -> None:
    """Checks on tensor contents: zero padding bits in packed weights, finite floats."""
    for i, (op, x) in enumerate(zip(graph.ops, values, strict=False)):
        if isinstance(op, (Dense, Conv2d)):
            weight = tensors[op.weight]
            if x.kind == "u8":
                k = (
                    math.prod(x.shape)
                    if isinstance(op, Dense)
                    else (op.kernel_size[0] * op.kernel_size[1] * x.shape[-1])
                )
            else:
                k = x.shape[-1]
            if k % 64:
                last = weight.reshape(-1, weight.shape[-1])[:, -1]
                if np.any(last >> np.uint64(k % 64)):
                    raise BNNFileError(
                        f"{op_label(i, op)}: tensor {op.weight!r} has nonzero padding bits "
                        f"past the {k} real elements of each packed row"
                    )
        if isinstance(op, Scores):
            for name in op.tensors().values():
                if not np.all(np.isfinite(tensors[name])):
                    raise BNNFileError(f"{op_label(i, op)}: tensor {name!r} is not finite")


def load(path: str | os.PathLike[str]) -> BNNFile:
    """Read and validate a ``.bnn`` file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        BNNFileError: anything wrong with the file (the message names it).
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    data = path.read_bytes()
    size = len(data)
    header, data_start = _parse_header(data, where)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or GRAPH_KEY not in metadata:
        raise BNNFileError(
            f"{where}: not a binarynet model file (a safetensors file without the "
            f"{GRAPH_KEY!r} graph in its metadata)"
        )
    graph_text = metadata[GRAPH_KEY]
    if not isinstance(graph_text, str):
        raise BNNFileError(f"{where}: corrupt graph metadata")
    try:
        graph_json = json.loads(graph_text)
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise BNNFileError(f"{where}: corrupt graph JSON ({exc})") from None
    try:
        graph = Graph.from_json(graph_json)  # format and version first, before the checksum
    except BNNFileError as exc:
        raise BNNFileError(f"{where}: {exc}") from None
    entries = _tensor_entries(header, len(data) - data_start, where)
    table = {name: (dtype, shape) for name, (dtype, shape, _, _) in entries.items()}
    try:
        graph.infer(table)  # shapes and dtypes, before any tensor is read
    except BNNFileError as exc:
        raise BNNFileError(f"{where}: {exc}") from None
    import safetensors.numpy

    try:
        raw = safetensors.numpy.load(data)
    except Exception as exc:  # the Rust parser's own error
        raise BNNFileError(f"{where}: safetensors could not read the file ({exc})") from None
    tensors = {name: np.require(raw[name], requirements=["C", "A"]) for name in entries}
    del data, raw
    if metadata.get(CHECKSUM_KEY) != _checksum(graph_text, tensors):
        raise BNNFileError(
            f"{where}: checksum mismatch: the file is corrupt (a byte of the graph or of the "
            "tensor data changed after it was written)"
        )
    bnn = _validate(graph, tensors, where)
    return BNNFile(bnn.graph, bnn.tensors, bnn.values, bnn.preprocessor, size)
