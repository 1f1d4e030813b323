"""Requantization: an exact integer map from a layer's integers y to a fixed-point stream.

A binary layer computes exact integers y, |y| ≤ R (its reachable bound). Where the network keeps
a real value after it (a residual stream, a PReLU, a pool), training runs the layer's batch norm
in float32 and rounds the result onto a fixed-point grid of step 2^e (the fake quantizer of
:mod:`binarynet.training.fixed_point`)::

    f(y) = fl(fl(fl(fl(y·s) + b)·a) + c)              (affine_eval: float32, one rounding per op)
    q(y) = clamp(rne(f(y)·2^−e), q_min, q_max)         (rne: round half to even; 2^−e is exact)

with q ∈ [q_min, q_max] the stream's integers (int8: −128..127, int16: −32768..32767). A
back-end must give q(y) for every reachable y without floating point. It does so with an
integer multiplier, an offset and a shift, as integer-only inference libraries do::

    q(y) = clamp((M·y + B) >> S, q_min, q_max)        (>> rounds towards −∞; M·y + B in int64)

with M (int32), B (int64) and S (0..30) per channel.
Why this exists and is exact. Every step of f is monotone in y — a product with a constant of
fixed sign, a sum with a constant, and float32 rounding are each monotone — so f, and then q, is
monotone: non-decreasing when s·a ≥ 0, non-increasing when s·a < 0, constant when a = 0. The
ideal map is affine, y·s·a·2^−e + (b·a + c)·2^−e, and f differs from it only by roundings far
below one step of q. So M = round(s·a·2^(S−e)) with S large enough reproduces the slope, and the
offset B that makes the two agree is found exactly: for every reachable y whose q(y) = k lies
strictly inside (q_min, q_max), the floor (M·y + B) >> S = k holds iff

    k·2^S − M·y  ≤  B  ≤  (k + 1)·2^S − M·y − 1,

(at the saturated ends only one side of the inequality applies), an interval of B per y. Their
intersection over all 2R + 1 reachable y is computed directly; an empty one means that M does not
fit, and the search tries the neighbouring multipliers, then a larger S.

A floor of an affine map has steps of regular widths, and rounding half to even does not: where
f(y)·2^−e lands exactly on half a step (y/2 on a grid of step 1 gives 0, 0, 1, 2, 2, 2, 3, 4 for
y = 0..7), or where float32's own roundings make a step one integer wider than its neighbours,
no (M, B, S) exists. Such a channel keeps its steps instead — the monotone step function as the
sorted integers where q moves by one (a :class:`StepChannel`): q(y) = q(−R) ± #{t ≤ y}, which
represents every monotone q exactly. The result is checked against q(y) on every reachable y, so
no rounding case — ties, γ < 0, γ = 0, saturation — is left to an argument on paper. The search
and the check are NumPy, O(R) per channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from binarynet.graph.values import MAX_EXACT, GraphError, affine_eval

__all__ = [
    "Requantization",
    "StepChannel",
    "fixed_point_range",
    "requantize",
    "requantize_reference",
]

_SHIFTS = range(0, 31)
"""The shifts S tried per channel, smallest first (|M| < 2³¹ and |y| < 2²⁴ keep M·y + B within
int64)."""


def fixed_point_range(bits: int) -> tuple[int, int]:
    """(q_min, q_max) of a signed ``bits``-bit stream: (−2^(bits−1), 2^(bits−1) − 1)."""
    if bits not in (8, 16):
        raise ValueError(f"a fixed-point stream has 8 or 16 bits, got {bits}")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def requantize_reference(
    y: np.ndarray,
    input_scale: float,
    bias: np.ndarray | None,
    scale: np.ndarray,
    shift: np.ndarray,
    exponent: int,
    bits: int,
) -> np.ndarray:
    """q(y) as torch computes it: the float32 affine, times 2^−e, rounded half to even,
    saturated (the last axis of ``y`` is the channel). int32."""
    lo, hi = fixed_point_range(bits)
    f = affine_eval(y, input_scale, bias, scale, shift)
    scaled = f * np.float32(2.0**-exponent)  # exact: a power of two
    return np.clip(np.rint(scaled), lo, hi).astype(np.int32)


@dataclass(frozen=True)
class StepChannel:
    """A channel given by its steps: q(y) = start + direction·#{t in thresholds : t ≤ y}
    (``thresholds`` sorted, int32; a value repeats where q moves by more than one)."""

    channel: int
    start: int
    direction: int
    thresholds: np.ndarray

    def __call__(self, y: np.ndarray) -> np.ndarray:
        count = np.searchsorted(self.thresholds, np.asarray(y, np.int64), side="right")
        return (self.start + self.direction * count).astype(np.int32)


@dataclass(frozen=True)
class Requantization:
    """Per channel, q(y) = clamp((multiplier·y + offset) >> shift, q_min, q_max), except the
    channels of ``steps``, which are given by their steps."""

    multiplier: np.ndarray  # int32 [C]
    offset: np.ndarray  # int64 [C]
    shift: np.ndarray  # int32 [C], 0..30
    q_min: int
    q_max: int
    steps: tuple[StepChannel, ...] = ()

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """q of the integers ``y`` (channels last), int32."""
        y = np.broadcast_to(np.asarray(y, np.int64), (*np.shape(y)[:-1], self.multiplier.size))
        acc = y * self.multiplier.astype(np.int64) + self.offset
        q = np.clip(acc >> self.shift, self.q_min, self.q_max).astype(np.int32)
        for step in self.steps:
            q[..., step.channel] = step(y[..., step.channel])
        return q


def _steps(channel: int, ys: np.ndarray, q: np.ndarray) -> StepChannel:
    """The steps of a monotone q over the consecutive integers ``ys``."""
    moves = np.diff(q)
    direction = -1 if np.any(moves < 0) else 1
    thresholds = np.repeat(ys[1:], np.abs(moves)).astype(np.int32)
    return StepChannel(channel, int(q[0]), direction, thresholds)


def _offset_interval(
    ys: np.ndarray, q: np.ndarray, m: int, s: int, q_min: int, q_max: int
) -> tuple[int, int]:
    """The integers B with clamp((m·y + B) >> s) = q(y) for every y in ``ys`` (an empty
    interval when low > high)."""
    my = ys * m
    step = 1 << s
    inside_low = q > q_min  # needs (m·y + B) >= q·2^s
    inside_high = q < q_max  # needs (m·y + B) <= (q + 1)·2^s − 1
    low = np.max(q[inside_low] * step - my[inside_low], initial=-(1 << 62))
    high = np.min((q[inside_high] + 1) * step - 1 - my[inside_high], initial=1 << 62)
    return int(low), int(high)


def _channel(ys: np.ndarray, q: np.ndarray, slope: float, q_min: int, q_max: int):
    """(M, B, S) for one channel, or None."""
    if np.all(q == q[0]):  # constant (a = 0, or saturated over the whole range)
        return 0, int(q[0]) << _SHIFTS[0], _SHIFTS[0]
    for s in _SHIFTS:
        centre = round(slope * (1 << s))
        for m in (centre, centre - 1, centre + 1, centre - 2, centre + 2):
            if not -(1 << 31) < m < (1 << 31):
                continue
            low, high = _offset_interval(ys, q, m, s, q_min, q_max)
            if low <= high:
                return m, (low + high) // 2, s
    return None


def requantize(
    bound: int,
    input_scale: float,
    bias: np.ndarray | None,
    scale: np.ndarray,
    shift: np.ndarray,
    exponent: int,
    bits: int = 8,
    where: str = "requantize",
) -> Requantization:
    """The exact integer requantization of the float32 affine (``input_scale``, ``bias``,
    ``scale``, ``shift`` per channel, as :func:`~binarynet.graph.values.affine_eval`) onto the
    ``bits``-bit stream of step 2^``exponent``, for every integer |y| ≤ ``bound``.

    Raises:
        GraphError: a bound beyond the exact range, or a channel no multiplier reproduces
            (the message names the channel).
    """
    if not 0 <= bound <= MAX_EXACT:
        raise GraphError(f"{where}: reachable bound {bound} is outside 0..{MAX_EXACT}")
    q_min, q_max = fixed_point_range(bits)
    params = [scale, shift] + ([] if bias is None else [bias])
    for name, values in zip(("scale", "shift", "bias"), params, strict=False):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise GraphError(
                f"{where}: channel {int(bad[0])}: the batch norm's {name} is not finite"
            )
    ys = np.arange(-bound, bound + 1, dtype=np.int64)
    channels = scale.shape[0]
    table = requantize_reference(
        np.broadcast_to(ys[:, None], (ys.size, channels)),
        input_scale,
        bias,
        scale,
        shift,
        exponent,
        bits,
    ).astype(np.int64)
    found, steps = [], []
    for c in range(channels):
        slope = float(input_scale) * float(scale[c]) * 2.0**-exponent
        if not math.isfinite(slope):
            raise GraphError(f"{where}: channel {c}: the batch norm is not finite")
        moves = np.diff(table[:, c])
        if np.any(moves > 0) and np.any(moves < 0):  # pragma: no cover - f is monotone
            raise GraphError(f"{where}: channel {c}: the float32 batch norm is not monotone")
        got = _channel(ys, table[:, c], slope, q_min, q_max)
        if got is None:
            steps.append(_steps(c, ys, table[:, c]))
            got = (0, 0, _SHIFTS[0])
        found.append(got)
    result = Requantization(
        np.array([m for m, _, _ in found], np.int32),
        np.array([b for _, b, _ in found], np.int64),
        np.array([s for _, _, s in found], np.int32),
        q_min,
        q_max,
        tuple(steps),
    )
    mismatch = np.nonzero(np.any(result(ys[:, None]) != table, axis=0))[0]
    if mismatch.size:  # pragma: no cover - the intervals above make this impossible
        raise GraphError(f"{where}: channel {int(mismatch[0])}: requantization check failed")
    return result
