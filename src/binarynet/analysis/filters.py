"""Filter repetitions in binary convolutions (Section 3 of the paper).

A binary convolution has weights W_b = sign(W) ∈ {−1, +1}^{O×C×k_h×k_w}. Section 3 of the paper
("Exploiting filter repetitions", and the caption of its Figure 2) observes that binary k×k
kernels can take only 2^{k²} patterns (512 for 3×3), so that many of them repeat; it proposes to
apply only the unique 2-D filters to each feature map and to sum their results into each 3-D
filter's output, counts a negated (inverse) filter as a repetition too, and reports that its
trained CIFAR-10 ConvNet has only 42 % unique filters per layer on average.

We read the paper's 42 % as counting *2-D k×k kernels per input feature map, up to sign*, and
report it beside the stricter counts. For a layer with sign pattern S = sign(W) (sign(0) = +1):

- **3-D filters** f_o = S[o] ∈ {±1}^{C·k_h·k_w}: ``unique_3d`` = |{f_o}| / O, the output
  channels whose popcounts are distinct computations;
- **3-D filters up to sign**: f and −f give the same popcount up to sign
  (⟨x, −f⟩ = −⟨x, f⟩), so each filter is canonicalised to the one of ±f whose first element is
  +1; ``unique_3d_sign`` = |{canon(f_o)}| / O;
- **2-D kernels per input channel** g_{o,c} = S[o, c] ∈ {±1}^{k_h·k_w}: for each input channel
  c, u_c = |{g_{o,c} : o}| / O, and ``unique_2d`` = mean_c u_c = Σ_c |{g_{o,c}}| / (O·C), the
  fraction of the O·C kernel applications that are distinct (at most 2^{k_h·k_w} per channel);
  ``unique_2d_sign`` is the same count up to sign (at most 2^{k_h·k_w − 1} per channel) — the
  paper's definition.

The 2-D fractions depend on the width O as much as on training: drawing O kernels uniformly at
random from N patterns gives E|{g}| = N·(1 − (1 − 1/N)^O) distinct ones, so a 512-channel 3×3
layer (N = 256 up to sign) cannot exceed 50 % and random signs already give 43 %.
``random_2d_sign`` is that reference value for each layer.

:func:`layer_repetitions` takes sign patterns as NumPy arrays (no torch);
:func:`model_repetitions` reads them from a torch model or from a ``.bnn`` file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "PAPER_UNIQUE_2D_SIGN",
    "FilterRepetitions",
    "layer_repetitions",
    "mean_repetitions",
    "model_repetitions",
]

PAPER_UNIQUE_2D_SIGN = 0.42
"""The paper's figure for its trained CIFAR-10 ConvNet: 42 % unique 2-D filters per layer on
average (2-D kernels per feature map, a kernel and its negation counted once)."""


@dataclass(frozen=True)
class FilterRepetitions:
    """Repetition counts of one binary convolution (see the module docstring).

    Attributes:
        name: the layer (torch module name, or the ``.bnn`` op's source).
        shape: (O, C, k_h, k_w).
        distinct_3d, distinct_3d_sign: number of distinct 3-D filters (as is / up to sign).
        distinct_2d, distinct_2d_sign: Σ over input channels of the number of distinct 2-D
            kernels in that channel (as is / up to sign); out of O·C.
        patterns_2d: distinct k_h×k_w patterns in the whole layer, all channels together (out of
            at most 2^{k_h·k_w}).
    """

    name: str
    shape: tuple[int, int, int, int]
    distinct_3d: int
    distinct_3d_sign: int
    distinct_2d: int
    distinct_2d_sign: int
    patterns_2d: int

    @property
    def filters(self) -> int:
        return self.shape[0]

    @property
    def kernels(self) -> int:
        """O·C, the number of 2-D kernel applications per output position."""
        return self.shape[0] * self.shape[1]

    @property
    def unique_3d(self) -> float:
        return self.distinct_3d / self.filters

    @property
    def unique_3d_sign(self) -> float:
        return self.distinct_3d_sign / self.filters

    @property
    def unique_2d(self) -> float:
        return self.distinct_2d / self.kernels

    @property
    def unique_2d_sign(self) -> float:
        """The paper's definition (its "42 %")."""
        return self.distinct_2d_sign / self.kernels

    @property
    def random_2d_sign(self) -> float:
        """``unique_2d_sign`` expected of uniformly random signs: N·(1 − (1 − 1/N)^O) / O with
        N = 2^{k_h·k_w − 1} patterns up to sign."""
        o, _, kh, kw = self.shape
        n = 2.0 ** (kh * kw - 1)
        return n * -math.expm1(o * math.log1p(-1.0 / n)) / o if n > 1 else 1.0 / o

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["shape"] = list(self.shape)
        for key in ("unique_3d", "unique_3d_sign", "unique_2d", "unique_2d_sign", "random_2d_sign"):
            out[key] = getattr(self, key)
        return out


def _as_negative(signs: np.ndarray, where: str) -> np.ndarray:
    """±1 (or any real) weights, or booleans with True = −1 → booleans True = −1."""
    a = np.asarray(signs)
    if a.ndim != 4 or 0 in a.shape:
        raise ValueError(
            f"{where}: expected a non-empty 4-D weight [O, C, kh, kw], got shape {list(a.shape)}"
        )
    if a.dtype == bool:
        return a
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{where}: expected numeric or boolean weights, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: the weights are not all finite")
    return a < 0  # sign(0) = +1, as binarynet.training.quantize.binarize


def _distinct_rows(rows: np.ndarray) -> int:
    """Number of distinct rows of a 2-D boolean array."""
    packed = np.packbits(rows, axis=1)
    return int(np.unique(packed, axis=0).shape[0])


def _canonical(rows: np.ndarray) -> np.ndarray:
    """Flip each row (booleans, True = −1) so that its first element is +1 (False)."""
    return rows ^ rows[:, :1]


def _distinct_per_column(codes: np.ndarray) -> int:
    """Σ over columns of the number of distinct values in that column of an int array."""
    s = np.sort(codes, axis=0)
    return int(s.shape[1] + np.count_nonzero(s[1:] != s[:-1]))


def layer_repetitions(signs: np.ndarray, name: str = "") -> FilterRepetitions:
    """Repetition counts of one layer from its weights ``[O, C, kh, kw]``.

    ``signs``: booleans (True = −1), ±1 values, or latent real weights (their sign is taken,
    sign(0) = +1).
    """
    neg = _as_negative(signs, name or "layer_repetitions")
    o, c, kh, kw = neg.shape
    taps = kh * kw
    if taps > 62:
        raise ValueError(f"{name}: kernels of {kh}×{kw} > 62 taps are not supported")
    rows = neg.reshape(o, -1)
    # 2-D kernels as integers: bit t of the code is tap t (True = −1).
    weights = np.left_shift(np.int64(1), np.arange(taps, dtype=np.int64))
    codes = (neg.reshape(o, c, taps).astype(np.int64) * weights).sum(axis=2)  # [O, C]
    # Up to sign: flip every kernel whose first tap is −1 (code ^ all-ones clears bit 0).
    full = (np.int64(1) << taps) - 1
    codes_sign = np.where(codes & 1, codes ^ full, codes)
    return FilterRepetitions(
        name=name,
        shape=(o, c, kh, kw),
        distinct_3d=_distinct_rows(rows),
        distinct_3d_sign=_distinct_rows(_canonical(rows)),
        distinct_2d=_distinct_per_column(codes),
        distinct_2d_sign=_distinct_per_column(codes_sign),
        patterns_2d=int(np.unique(codes).size),
    )


def mean_repetitions(layers: Iterable[FilterRepetitions]) -> dict[str, float]:
    """Unweighted means over layers ("per layer on average", as the paper reports)."""
    layers = list(layers)
    if not layers:
        return {}
    keys = ("unique_3d", "unique_3d_sign", "unique_2d", "unique_2d_sign", "random_2d_sign")
    return {k: float(np.mean([getattr(layer, k) for layer in layers])) for k in keys}


def _torch_conv_signs(model: Any) -> list[tuple[str, np.ndarray]]:
    from binarynet.training.nn import BinaryConv2d

    out = []
    for name, module in model.named_modules():
        if isinstance(module, BinaryConv2d):
            w = module.weight.detach().float().cpu().numpy()
            out.append((name, w < 0))
    return out


def _bnn_conv_signs(bnn: Any) -> list[tuple[str, np.ndarray]]:
    """Sign patterns [O, C, kh, kw] (True = −1) of the conv2d ops of a loaded ``.bnn`` file."""
    from binarynet.graph.ops import Conv2d, op_label

    out = []
    for i, op in enumerate(bnn.graph.ops):
        if not isinstance(op, Conv2d):  # the 2-D filters are the convolutions'
            continue
        neg = op.weight_signs(bnn.values[i], bnn.tensors)  # [O, kh, kw, C]
        out.append((op.source or op_label(i, op), neg.transpose(0, 3, 1, 2)))
    return out


def model_repetitions(model: Any) -> list[FilterRepetitions]:
    """Repetition counts of every binary convolution of ``model``.

    ``model``: a torch model (its :class:`~binarynet.training.nn.BinaryConv2d` layers, in module
    order), a loaded :class:`binarynet.graph.bnnfile.BNNFile`, or the path of a ``.bnn`` file (read
    without torch).
    """
    if isinstance(model, (str, os.PathLike)):
        from binarynet.graph import bnnfile

        model = bnnfile.load(model)
    if hasattr(model, "graph") and hasattr(model, "tensors"):
        layers = _bnn_conv_signs(model)
    elif hasattr(model, "named_modules"):
        layers = _torch_conv_signs(model)
    else:
        raise TypeError(
            f"expected a torch model, a BNNFile or a .bnn path, got {type(model).__name__}"
        )
    return [layer_repetitions(neg, name) for name, neg in layers]
