"""The values of a deployable graph, torch-free: value kinds, the input spec, bit packing, limits.

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


Every check of a graph raises :class:`GraphError` (a ``ValueError``) naming what is wrong; the
JSON field readers below are the ones every op uses.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "MAX_DIM",
    "MAX_EXACT",
    "MAX_OPS",
    "MAX_VALUE_BYTES",
    "GraphError",
    "InputSpec",
    "Tensors",
    "ValueInfo",
    "affine_eval",
    "pack_bits",
    "unpack_bits",
]

INT32_MIN = int(np.iinfo(np.int32).min)
INT32_MAX = int(np.iinfo(np.int32).max)

MAX_EXACT = (1 << 24) - 1
"""Largest |y| of an integer pre-activation: torch's float32 sums are exact below 2²⁴."""
MAX_VALUE_BYTES = 1 << 28
"""Largest per-example intermediate value (bytes) the engine agrees to allocate."""
MAX_DIM = 1 << 16
"""Largest input or kernel dimension accepted."""
MAX_OPS = 4096

LAYOUTS = {1: "NF", 2: "NHW", 3: "NHWC"}

Tensors = Mapping[str, tuple[str, tuple[int, ...]]]
"""{tensor name: (safetensors dtype, shape)}: what shape inference checks tensors against."""


class GraphError(ValueError):
    """A graph (or the ``.bnn`` file holding it) is malformed or unsupported."""


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


def words(k: int) -> int:
    return -(-k // 64)


# --------------------------------------------------------------------------------------------
# JSON fields: one reader per kind of field, each failing with the field and the op named
# --------------------------------------------------------------------------------------------


def fail(where: str, message: str) -> GraphError:
    return GraphError(f"{where}: {message}" if where else message)


def json_int(obj: Mapping[str, Any], key: str, where: str, lo: int, hi: int) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(where, f"{key!r} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise fail(where, f"{key!r} = {value} is out of range; expected {lo}..{hi}")
    return value


def json_pair(obj: Mapping[str, Any], key: str, where: str, lo: int, hi: int) -> tuple[int, int]:
    value = obj.get(key)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
    ):
        raise fail(where, f"{key!r} must be a list of two integers, got {value!r}")
    for v in value:
        if not lo <= v <= hi:
            raise fail(where, f"{key!r} = {value} is out of range; expected values in {lo}..{hi}")
    return value[0], value[1]


def json_name(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise fail(where, f"{key!r} must name a tensor (a non-empty string), got {value!r}")
    return value


def json_optional_name(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    return None if obj.get(key) is None else json_name(obj, key, where)


def json_power_of_two(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(where, f"{key!r} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise fail(where, f"{key!r} must be a positive power of two, got {value!r}")
    mantissa, exponent = math.frexp(value)
    if mantissa != 0.5 or not -60 <= exponent <= 60:
        raise fail(where, f"{key!r} must be a power of two in 2^-60..2^60, got {value!r}")
    return value


def check_keys(obj: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise fail(where, f"unknown fields {unknown}; expected only {sorted(allowed)}")


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
        return LAYOUTS[len(self.shape)]

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
            raise fail(where, f"must be an object, got {type(obj).__name__}")
        check_keys(obj, ("layout", "shape", "dtype", "zero_point", "scale"), where)
        shape = obj.get("shape")
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= 3
            or any(isinstance(d, bool) or not isinstance(d, int) for d in shape)
        ):
            raise fail(where, f"'shape' must be a list of 1 to 3 integers, got {shape!r}")
        if any(not 1 <= d <= MAX_DIM for d in shape):
            raise fail(where, f"'shape' {shape} has a dimension outside 1..{MAX_DIM}")
        if math.prod(shape) > MAX_VALUE_BYTES:
            raise fail(where, f"'shape' {shape} is too large ({math.prod(shape)} bytes)")
        layout = obj.get("layout")
        if layout != LAYOUTS[len(shape)]:
            raise fail(
                where,
                f"'layout' {layout!r} disagrees with shape {shape}; "
                f"expected {LAYOUTS[len(shape)]!r}",
            )
        if obj.get("dtype") != "uint8":
            raise fail(where, f"'dtype' must be 'uint8', got {obj.get('dtype')!r}")
        zero_point = json_int(obj, "zero_point", where, 0, 255)
        scale = json_power_of_two(obj.get("scale"), where, "scale")
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
            return 8 * math.prod(self.shape[:-1]) * words(self.shape[-1])
        itemsize = {"u8": 1, "int32": 4, "float32": 4}[self.kind]
        return itemsize * math.prod(self.shape)

    def describe(self) -> str:
        dims = "×".join(map(str, self.shape))
        return f"{self.kind}[{dims}]"
