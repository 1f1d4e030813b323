"""Fixed-point real-valued paths: the fake quantizer that makes training see deployed integers.

A modern BNN keeps some values real (a residual stream, a PReLU's output, an average pool). At
deployment such a value is a signed integer q with a power-of-two step 2^e: an int8 (or int16)
stream, x = q·2^e. Training rounds onto the same grid, so that the eval-mode torch forward is
exactly the integer arithmetic that every back-end runs::

    forward    q = clamp(rne(x·2^−e), q_min, q_max),   x̂ = q·2^e
    backward   ∂C/∂x = ∂C/∂x̂ · 1{q_min − ½ ≤ x·2^−e ≤ q_max + ½}

rne is round-half-to-even (``torch.round``), 2^−e is a power of two so x·2^−e is exact in
float32, and x̂ is exact too (|q| ≤ 2^15). The gradient is the straight-through estimator with
saturation, as for the binarizers (:mod:`binarynet.training.quantize`, Eq. 4 of the paper): the
rounding passes the gradient, the clamp cancels it where the stream saturates.

The integer side of the same map, from a binary layer's integers y through its batch norm, is
:mod:`binarynet.graph.requantize`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FixedPoint", "fake_quantize"]


def _range(bits: int) -> tuple[int, int]:
    if bits not in (8, 16):
        raise ValueError(f"FixedPoint: bits must be 8 or 16, got {bits}")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


class _FakeQuantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, exponent: int, q_min: int, q_max: int) -> torch.Tensor:
        scaled = x * (2.0**-exponent)
        ctx.save_for_backward(scaled)
        ctx.bounds = (q_min - 0.5, q_max + 0.5)
        return torch.round(scaled).clamp_(q_min, q_max) * (2.0**exponent)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (scaled,) = ctx.saved_tensors
        low, high = ctx.bounds
        keep = (scaled >= low) & (scaled <= high)
        return grad * keep.to(grad.dtype), None, None, None


def fake_quantize(x: torch.Tensor, exponent: int, bits: int = 8) -> torch.Tensor:
    """x rounded onto the ``bits``-bit grid of step 2^``exponent`` (see the module docstring)."""
    q_min, q_max = _range(bits)
    out: torch.Tensor = _FakeQuantize.apply(x, int(exponent), q_min, q_max)
    return out


class FixedPoint(nn.Module):
    """A real-valued path's deployed number type: ``bits``-bit integers times 2^``exponent``.

    Args:
        exponent: the step's exponent e (−4: step 1/16; an int8 stream then spans [−8, 7.9375]).
        bits: 8 or 16.
    """

    def __init__(self, exponent: int = -4, bits: int = 8) -> None:
        super().__init__()
        if isinstance(exponent, bool) or not isinstance(exponent, int) or not -30 <= exponent <= 30:
            raise ValueError(
                f"FixedPoint: exponent must be an integer in -30..30, got {exponent!r}"
            )
        self.q_min, self.q_max = _range(bits)
        self.exponent = exponent
        self.bits = bits

    @property
    def step(self) -> float:
        return 2.0**self.exponent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize(x, self.exponent, self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, exponent={self.exponent}"
