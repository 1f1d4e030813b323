"""Sign flips of latent weights: how many binary weights change sign between two snapshots.

:func:`latent_signs` takes the bits of sign(W) of every binary layer (sign(0) = +1) and
:func:`sign_flip_fractions` compares two snapshots, for example the ends of two epochs; the
trainer logs them per epoch and :mod:`binarynet.training.plots` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from torch import nn

from binarynet.training.nn import BinaryConv2d, BinaryLinear

__all__ = ["latent_signs", "sign_flip_fractions"]


def latent_signs(model: nn.Module) -> dict[str, np.ndarray]:
    """{layer name: booleans, True where the latent weight is negative} for every binary layer
    of a torch model (:class:`~binarynet.training.nn.BinaryLinear` and
    :class:`~binarynet.training.nn.BinaryConv2d`), i.e. the bits of sign(W) that the forward pass
    uses (sign(0) = +1)."""
    return {
        name: (module.weight.detach() < 0).cpu().numpy()
        for name, module in model.named_modules()
        if isinstance(module, (BinaryLinear, BinaryConv2d))
    }


def sign_flip_fractions(
    before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """Per layer, the fraction of binary weights whose sign differs between two snapshots of
    :func:`latent_signs`: |{i : s_i ≠ s'_i}| / n. Layers must match in name and shape."""
    if set(before) != set(after):
        raise ValueError(
            f"the snapshots name different layers: {sorted(before)} vs {sorted(after)}"
        )
    out = {}
    for name, a in before.items():
        b = after[name]
        if np.shape(a) != np.shape(b):
            raise ValueError(
                f"layer {name!r}: shapes differ between snapshots, {np.shape(a)} vs {np.shape(b)}"
            )
        n = math.prod(np.shape(a))
        out[name] = float(np.count_nonzero(np.asarray(a) != np.asarray(b)) / n) if n else 0.0
    return out
