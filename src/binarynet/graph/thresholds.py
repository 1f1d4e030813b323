"""The one classification of a threshold channel over the reachable integers, torch-free.

A ``threshold`` op outputs +1 on channel c iff lo_c ≤ y ≤ hi_c, and the layer before it only
reaches integers |y| ≤ R (its bound). Over [−R, R] a channel is one of:

========  ===============================  =====================================================
kind      where +1                         how back-ends use it
========  ===============================  =====================================================
NEVER     nowhere (constant −1)            pool either way; QONNX: y ≥ R + 1
ALWAYS    everywhere (constant +1)         pool either way; QONNX: y ≥ −R
UP        y ≥ lo (an up-set)               max-pool before the threshold = AND of ±1 bits
                                           (bit 1 = −1); QONNX: y ≥ lo
DOWN      y ≤ hi (a down-set)              max-pool before = OR of the bits; QONNX: −y ≥ −hi
INSIDE    lo ≤ y ≤ hi strictly inside      neither: no bit rule, no single MultiThreshold
========  ===============================  =====================================================

Batch norm followed by sign is monotone in y (γ > 0: an up-set, γ < 0: a down-set, γ = 0: a
constant), so the export never makes INSIDE; a hand-written file can hold one. The kind follows
from whether +1 holds at the two ends −R and R (:func:`classify_ends`); for an interval
(:func:`classify`) INSIDE is the one case that the ends cannot tell from NEVER.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["Kind", "classify", "classify_ends"]


class Kind(enum.IntEnum):
    """The kind of a threshold channel over [−R, R] (see the module docstring)."""

    NEVER = 0
    ALWAYS = 1
    UP = 2
    DOWN = 3
    INSIDE = 4


def classify_ends(at_low: np.ndarray, at_high: np.ndarray) -> np.ndarray:
    """Per channel, the :class:`Kind` (int8) of a monotone predicate from its values at −R
    (``at_low``) and at R (``at_high``): never INSIDE."""
    at_low, at_high = np.asarray(at_low, bool), np.asarray(at_high, bool)
    return np.select(
        [at_low & at_high, ~at_low & at_high, at_low & ~at_high],
        [Kind.ALWAYS, Kind.UP, Kind.DOWN],
        Kind.NEVER,
    ).astype(np.int8)


def classify(lo: np.ndarray, hi: np.ndarray, bound: int) -> np.ndarray:
    """Per channel, the :class:`Kind` (int8) of +1 iff lo ≤ y ≤ hi over |y| ≤ ``bound``."""
    lo64, hi64 = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    at_low = (lo64 <= -bound) & (-bound <= hi64)
    at_high = (lo64 <= bound) & (bound <= hi64)
    kinds = classify_ends(at_low, at_high)
    inside = ~at_low & ~at_high & (lo64 <= hi64) & (lo64 <= bound) & (hi64 >= -bound)
    kinds[inside] = Kind.INSIDE
    return kinds
