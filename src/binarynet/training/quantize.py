"""Binarizers with the straight-through estimator (Courbariaux et al., 2016, Section 1.1–1.3).

Deterministic binarization (Eq. 1)::

    x_b = sign(x) = +1 if x >= 0 else −1            (sign(0) = +1, sign(−0.0) = +1)

Stochastic binarization (Eq. 2)::

    x_b = +1 with probability p = hard_sigmoid(x) = clip((x + 1) / 2, 0, 1), else −1

Both are trained with the straight-through estimator *with saturation* (Eq. 4)::

    ∂C/∂x = ∂C/∂x_b · 1{|x| ≤ 1}

i.e. the gradient of hard tanh, cancelled where the input saturates. The boundary |x| = 1 passes
the gradient: latent weights clipped to exactly ±1 must still be able to move back.

The shift-based batch norm and AdaMax (Algorithms 3 and 4) round to powers of two with::

    AP2(x) = sign(x) · 2^round(log2|x|)        (AP2(0) = 0)

so that a multiplication by AP2(x) is a binary shift.

The forward value is returned in the input's dtype, or in ``out_dtype`` when given: ±1 is exact in
every floating dtype, so binary operands can be produced directly in bfloat16 for fast matmuls.
"""

from __future__ import annotations

import math

import torch

from binarynet import _kernels

__all__ = [
    "ap2",
    "ap2_positive_",
    "ap2_scalar",
    "ap2_ste",
    "binarize",
    "hard_sigmoid",
    "sign",
    "ste_mask",
]


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """hard_sigmoid(x) = clip((x + 1) / 2, 0, 1), the probability of +1 in Eq. 2."""
    return ((x + 1) * 0.5).clamp_(0, 1)


def ste_mask(x: torch.Tensor) -> torch.Tensor:
    """The saturating straight-through mask 1{|x| ≤ 1} as a float tensor of ``x``'s dtype."""
    return (x.abs() <= 1).to(x.dtype)


def _saturating_backward(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # grad · 1{|x| ≤ 1} in one fused pass: hardtanh_backward keeps grad where lo < x < hi, and
    # the open interval (−(1 + eps), 1 + eps) holds exactly the values of x's dtype with |x| ≤ 1
    # (1 + eps is the next representable value above 1). NaN inputs get a zero gradient.
    bound = 1.0 + torch.finfo(x.dtype).eps
    return torch.ops.aten.hardtanh_backward(grad.to(x.dtype), x, -bound, bound)


# Below this many elements the compiled one-pass sign is not worth its call overhead.
_SIGN_KERNEL_MIN = 1 << 14


def _sign_values(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # copysign(1, x + 0.0): adding +0.0 turns −0.0 into +0.0, so sign(±0) = +1. Conversion to a
    # narrower float keeps the sign of every value (bfloat16 has float32's exponent range).
    # For large CPU float32 tensors (latent weights) the compiled kernel computes the same values
    # in one pass instead of three (the add, its allocation, the copysign). Only plain tensors
    # have memory to hand it: a tracer's tensor subclass (torch.export's fake tensors) takes the
    # torch ops.
    if (
        type(x) is torch.Tensor
        and x.dtype == torch.float32
        and dtype == torch.float32
        and x.device.type == "cpu"
        and x.numel() >= _SIGN_KERNEL_MIN
        and x.is_contiguous()
    ):
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        _kernels.sign_values(
            x.detach().view(-1).numpy(),
            out.view(-1).numpy(),
            threads=min(torch.get_num_threads(), 1024),
        )
        return out
    src = x if x.dtype == dtype else x.to(dtype)
    return torch.copysign(torch.ones((), dtype=dtype, device=x.device), src + 0.0)


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
        ctx.save_for_backward(x)
        return _sign_values(x, out_dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return _saturating_backward(grad, x), None


class _StochasticSTE(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, x: torch.Tensor, out_dtype: torch.dtype, generator: torch.Generator | None
    ) -> torch.Tensor:
        ctx.save_for_backward(x)
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=torch.float32)
        # +1 iff u < hard_sigmoid(x); u ∈ [0, 1) so x ≥ 1 always gives +1 and x ≤ −1 always −1.
        positive = u < hard_sigmoid(x.float())
        return positive.to(out_dtype).mul_(2).sub_(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return _saturating_backward(grad, x), None, None


def sign(x: torch.Tensor, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Deterministic binarization sign(x) ∈ {−1, +1} with sign(0) = +1 and the saturating STE."""
    return _SignSTE.apply(x, out_dtype or x.dtype)


def binarize(
    x: torch.Tensor,
    stochastic: bool = False,
    generator: torch.Generator | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Binarize ``x`` to ±1, deterministically (Eq. 1) or stochastically (Eq. 2), with the STE.

    Args:
        x: real-valued input (latent weights or pre-activations).
        stochastic: draw +1 with probability hard_sigmoid(x) instead of taking the sign.
        generator: random generator for the stochastic draw (ignored when deterministic).
        out_dtype: dtype of the ±1 output (default: ``x.dtype``).
    """
    if stochastic:
        return _StochasticSTE.apply(x, out_dtype or x.dtype, generator)
    return sign(x, out_dtype)


# AP2 on float32 bit patterns. For |x| = (1 + f/2²³)·2^e, round(log2|x|) = e + 1 exactly when
# 1 + f/2²³ ≥ √2, i.e. when the 23-bit fraction f ≥ _SQRT2_FRACTION; adding 2²³ − _SQRT2_FRACTION
# to the magnitude bits carries into the exponent in exactly those cases, and masking off the
# fraction leaves 2^round(log2|x|). Zero stays zero; ±inf stays ±inf.
_SQRT2_FRACTION = 3474676  # the smallest f with 1 + f/2²³ ≥ √2 (√2 − 1 = 3474675.2 / 2²³)
_FLOAT32_CARRY = (1 << 23) - _SQRT2_FRACTION
_FLOAT32_EXPONENT = 0x7F800000
_FLOAT32_SIGN = -0x80000000


def ap2(x: torch.Tensor) -> torch.Tensor:
    """Approximate power of two, AP2(x) = sign(x)·2^round(log2|x|), elementwise; AP2(0) = 0.

    Exact (no rounding error of a float log2): float32 uses the bit trick above, other dtypes
    compare the frexp mantissa with √½. The midpoints |x| = 2^(k+1/2) are irrational, so no
    input is a tie. ±inf propagate. No gradient (see :func:`ap2_ste`).
    """
    if x.dtype == torch.float32:
        bits = x.view(torch.int32)
        magnitude = ((bits & 0x7FFFFFFF) + _FLOAT32_CARRY) & _FLOAT32_EXPONENT
        return (magnitude | (bits & _FLOAT32_SIGN)).view(torch.float32)
    mantissa, exponent = torch.frexp(x.abs())  # |x| = mantissa·2^exponent, mantissa ∈ [0.5, 1)
    exponent = exponent - (mantissa < math.sqrt(0.5)).to(exponent.dtype)
    magnitude = torch.where(x == 0, 0.0, torch.ldexp(torch.ones_like(x), exponent))
    return torch.copysign(magnitude.to(x.dtype), x)


def ap2_positive_(x: torch.Tensor) -> torch.Tensor:
    """AP2 of a non-negative float32 tensor, in place (the optimizer's hot path: two passes)."""
    if x.dtype != torch.float32 or not x.is_contiguous():
        return x.copy_(ap2(x))
    bits = x.view(torch.int32)
    bits.add_(_FLOAT32_CARRY).bitwise_and_(_FLOAT32_EXPONENT)
    return x


def ap2_ste(x: torch.Tensor) -> torch.Tensor:
    """AP2(x) in the forward pass, identity in the backward pass (straight-through)."""
    return x + (ap2(x) - x).detach()


def ap2_scalar(x: float) -> float:
    """AP2 of a Python float (for step sizes and learning-rate scales)."""
    if x == 0 or math.isnan(x) or math.isinf(x):
        return x
    return math.copysign(2.0 ** round(math.log2(abs(x))), x)
