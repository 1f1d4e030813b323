"""Batch norm + sign → integer thresholds: the float32 steps after a binary layer, folded.

A binary layer's torch output is an exact integer y times its ``input_scale`` (2⁻⁷ after the
8-bit input, else 1; see :mod:`binarynet.export.exporter`). Between it and the next sign come
elementwise float32 steps with per-channel constants: the layer's bias add, batch norm's
``v·scale + shift`` (``eval_affine()``), a learned per-channel factor, a negation. Each step is
one correctly rounded float32 operation, evaluated here with NumPy float32 in torch's order::

    f(y) = step_n(… step_1(fl(y·input_scale)))          (:func:`evaluate`)

Each rounded step is monotone in y: non-decreasing for an add and a multiplication by c > 0,
non-increasing for c < 0 and for a negation, constant for c = 0, in the order of the floats
with −0 below +0 (a rounded sum is −0 only when both addends are −0, and c·(−0), c·(+0) keep
that order or reverse it with c). The sign that follows outputs +1 iff the sign bit of f(y) is
clear (binarynet's sign adds +0.0 first, so that −0.0 also gives +1), so P(y) = [+1 at y] is
monotone on the integers. Over the reachable range [−R, R] P is therefore one of: always true,
always false, false-then-true (an up-set, y ≥ τ) or true-then-false (a down-set, y ≤ τ). We
evaluate P at ±R to tell which (:func:`binarynet.graph.thresholds.classify_ends`), then find τ by
a binary search over the integers. The result is the interval [lo, hi] with +1 iff lo ≤ y ≤ hi:

    up-set   [τ, INT32_MAX]     (the usual case γ > 0)
    down-set [INT32_MIN, τ]     (γ < 0)
    always +1: [INT32_MIN, INT32_MAX];  always −1: [INT32_MAX, INT32_MIN] (lo > hi)  (γ = 0, or
    a threshold outside the reachable range)

No assumption about the parity of y (y ≡ K mod 2 for ±1 inputs) or about ties is needed: the
search evaluates the exact torch expression at integers, so f(y) == 0 gives +1 like torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from binarynet.graph import thresholds
from binarynet.graph.values import INT32_MAX, INT32_MIN, MAX_EXACT, affine_eval

__all__ = [
    "ExportError",
    "Step",
    "evaluate",
    "predicate_interval",
    "threshold_interval",
]


class ExportError(ValueError):
    """The model cannot be exported exactly (the message names the op and where it came from)."""


@dataclass(frozen=True)
class Step:
    """One float32 step after a binary layer: ``kind`` "add" (v + c), "mul" (v · c) or "neg"
    (−v), with the per-channel float32 constant c ([C], None for "neg"); ``node``: the captured
    node it came from (for messages)."""

    kind: str
    const: np.ndarray | None
    node: Any = None

    @property
    def non_decreasing(self) -> bool:
        """Whether the step commutes with a max (an add, or a multiplication by c > 0)."""
        if self.kind == "add":
            return True
        return self.kind == "mul" and self.const is not None and bool(np.all(self.const > 0))


def evaluate(y: np.ndarray, input_scale: float, steps: Sequence[Step]) -> np.ndarray:
    """f(y) in float32, one rounding per step, per channel (the last axis of ``y``)."""
    v = np.asarray(y).astype(np.float32) * np.float32(input_scale)
    for step in steps:
        if step.kind == "neg":
            v = -v
        elif step.kind == "add":
            assert step.const is not None
            v = v + step.const
        else:
            assert step.const is not None
            v = v * step.const
    return v


def predicate_interval(
    bound: int, channels: int, positive: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel int32 (lo, hi) and :class:`~binarynet.graph.thresholds.Kind` (int8) with
    ``positive(y)`` ⇔ lo ≤ y ≤ hi for every integer |y| ≤ bound, for a ``positive`` that is
    monotone in y on each channel (see the module docstring). ``positive`` takes int64 [C] and
    returns bool [C]."""
    if not 0 <= bound <= MAX_EXACT:
        raise ExportError(f"reachable bound {bound} is outside 0..{MAX_EXACT}")
    low = np.full(channels, -bound, dtype=np.int64)
    high = np.full(channels, bound, dtype=np.int64)
    kinds = thresholds.classify_ends(positive(low), positive(high))
    up, down = kinds == thresholds.Kind.UP, kinds == thresholds.Kind.DOWN
    # Q(y) = P(y) for an up-set, ¬P(y) for a down-set: false at `a`, true at `b`; shrink to the
    # first y where Q is true. Other channels start with b − a = 1 and do not move.
    a = np.where(up | down, low, 0)
    b = np.where(up | down, high, 1)
    while np.any(b - a > 1):
        mid = (a + b) // 2
        q = positive(mid) ^ down
        b = np.where(q, mid, b)
        a = np.where(q, a, mid)
    lo = np.full(channels, INT32_MIN, dtype=np.int64)
    hi = np.full(channels, INT32_MAX, dtype=np.int64)
    lo[up] = b[up]  # the smallest y with P(y)
    hi[down] = a[down]  # the largest y with P(y)
    never = kinds == thresholds.Kind.NEVER
    lo[never], hi[never] = INT32_MAX, INT32_MIN
    return lo.astype(np.int32), hi.astype(np.int32), kinds


def threshold_interval(
    bound: int,
    input_scale: float,
    bias: np.ndarray | None,
    scale: np.ndarray,
    shift: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel int32 (lo, hi) with f(y) ≥ 0 ⇔ lo ≤ y ≤ hi for every integer |y| ≤ bound,
    f(y) = fl(fl(fl(fl(y·input_scale) + b)·scale) + shift): a binary layer (+ bias) → batch
    norm → sign, the paper's unit (:func:`predicate_interval` with that f)."""

    def positive(y: np.ndarray) -> np.ndarray:
        return affine_eval(y, input_scale, bias, scale, shift) >= 0

    lo, hi, _ = predicate_interval(bound, scale.shape[0], positive)
    return lo, hi
