"""The reference interpreter of the ``.bnn`` format: a graph's scores the slow, obvious way.

It reads the graph's JSON form (:func:`binarynet.graph.bnnfile.graph_to_json`) and its tensors
and applies the definitions of the :mod:`binarynet.graph.ops` docstring directly, sharing no
code with the op classes, the engine's planning, fusion and kernels, the C emitter or the
exporter: the weights are unpacked here to ±1 (its own unpacker), every value is an explicit
integer array, pooling and thresholds run in the order the format states. It is the oracle
of the fuzzing tests ("never a wrong answer") and of the export's self-check (the torch model
against the graph it was exported to). NumPy only.

Exactness of the sums: in a valid graph every pre-activation is an integer with |y| ≤ R ≤ 2²⁴
(the graph's limit, checked when a graph is loaded or saved), and so is every partial sum of its
products in any order (a sum of ±x̃ᵢ with Σ|x̃ᵢ| ≤ R). float32 holds every integer up to 2²⁴
exactly, so the products are computed as float32 matrix products (BLAS), every rounding of which
is exact, and converted back to int64. (NumPy's int64 matrix product has no BLAS and is more
than 30× slower.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["correlate", "maxpool", "reference", "unpack"]


def unpack(packed: np.ndarray, k: int) -> np.ndarray:
    """uint64 [..., W] → ±1 int64 [..., k] (element j in bit j % 64 of word j // 64, 1 = −1)."""
    as_bytes = np.ascontiguousarray(packed, dtype="<u8").view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :k]
    return 1 - 2 * bits.astype(np.int64)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact a @ b in float32 for integer operands whose partial sums stay within ±2²⁴."""
    return a.astype(np.float32) @ b.astype(np.float32)


def maxpool(y: np.ndarray, kernel: list[int], stride: list[int]) -> np.ndarray:
    n, h, w, c = y.shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.full((n, ho, wo, c), np.iinfo(np.int64).min, np.int64)
    for i in range(kh):
        for j in range(kw):
            window = y[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
            out = np.maximum(out, window)
    return out


def correlate(
    x: np.ndarray, wt: np.ndarray, stride: list[int], padding: list[int], pad_value: int = 0
) -> np.ndarray:
    """x int64 [N, H, W, C] (padded with ``pad_value``), wt int64 [O, kh, kw, C] →
    [N, Ho, Wo, O]."""
    n, h, w, c = x.shape
    o, kh, kw, _ = wt.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.full((n, h + 2 * ph, w + 2 * pw, c), pad_value, np.float32)
    xp[:, ph : ph + h, pw : pw + w] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, ho, wo, o), np.float32)  # partial sums over taps: exact too
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
            out += _matmul(patch, wt[:, i, j, :].T)
    return out.astype(np.int64)


def reference(
    graph: Mapping[str, Any], tensors: Mapping[str, np.ndarray], x: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(float32 scores [N, classes], every binary layer's integers y before pooling) of the
    uint8 input ``x`` [N, *input.shape] (no preprocessing), from the format's definitions."""
    zp = graph["input"]["zero_point"]
    n = x.shape[0]
    v = x.astype(np.int64) - zp  # x̃; padded taps are 0 = p − zp for p = zp
    kind = "u8"
    ys: list[np.ndarray] = []
    y = np.zeros(0, np.int64)
    for op in graph["ops"]:
        t = op["type"]
        if t == "dense":
            k = math.prod(v.shape[1:])
            weight = tensors[op["weight"]]
            o = op["out_features"]
            # u8 input: [O, words(K)]; bits: [O, *S[:-1], words(S[-1])], padded per position
            wt = unpack(weight, k) if kind == "u8" else unpack(weight, v.shape[-1]).reshape(o, k)
            y = _matmul(v.reshape(n, k), wt.T).astype(np.int64)
            ys.append(y)
        elif t == "conv2d":
            c = v.shape[-1]
            o = op["out_channels"]
            kh, kw = op["kernel_size"]
            weight = tensors[op["weight"]]
            if kind == "u8":
                wt = unpack(weight, kh * kw * c).reshape(o, kh, kw, c)
            else:
                wt = unpack(weight, c)
            y = correlate(v, wt, op["stride"], op["padding"], op.get("pad_value", 0))
            ys.append(y)
        elif t == "maxpool2d":
            y = maxpool(y, op["kernel_size"], op["stride"])
        elif t == "threshold":
            lo = tensors[op["lo"]].astype(np.int64)
            hi = tensors[op["hi"]].astype(np.int64)
            v = np.where((lo <= y) & (y <= hi), 1, -1).astype(np.int64)
            kind = "bits"
        elif t == "scores":
            s = y.astype(np.float32) * np.float32(op["input_scale"])
            if op.get("bias") is not None:
                s = s + tensors[op["bias"]].astype(np.float32)
            s = s * tensors[op["scale"]].astype(np.float32)
            s = s + tensors[op["shift"]].astype(np.float32)
            return s.astype(np.float32), ys
        else:  # pragma: no cover - the loader refuses it
            raise AssertionError(f"reference: unknown op {t!r}")
    raise AssertionError("reference: no scores op")  # pragma: no cover
