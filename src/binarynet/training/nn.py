"""Binarized layers, binary activations and (shift-based) batch normalization.

A Binarized Neural Network layer keeps real-valued *latent* weights W ∈ [−1, 1] (initialised
uniformly in [−1, 1], clipped there after every update by :func:`clip_weights_`) and uses their
binarization W_b = sign(W) in every forward pass (Algorithm 1 of the paper); gradients reach W
through the straight-through estimator of :mod:`binarynet.training.quantize`.

Hidden units are binarized by :class:`BinaryActivation` modules placed after each batch norm, as
in the paper's networks; the layers themselves can also binarize their input
(``binarize_input=True``, for stand-alone use). The first layer of a network takes the 8-bit
fixed-point input of :class:`FixedPointInput` instead (Algorithm 5).

Batch norm in evaluation mode computes exactly ``y = x * scale + shift`` in float32 with the
per-channel ``(scale, shift)`` returned by ``eval_affine()``, for both :class:`ExactBatchNorm1d` /
:class:`ExactBatchNorm2d` and :class:`ShiftBatchNorm1d` / :class:`ShiftBatchNorm2d`. That expression
is the contract with :mod:`binarynet.export`, which folds batch norm + sign into integer thresholds
by evaluating the same two float32 operations, so that the deployed network is bit-exact.

Binary layers may run their training-mode matmuls in bfloat16 (``compute_dtype``, see
:func:`set_compute_dtype`): ±1 and 8-bit fixed-point operands are exact in bfloat16, and bf16
matrix products run several times faster than float32 on CPUs with AVX-512 BF16 or AMX. The
evaluation-mode forward always runs in float32 and is exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from binarynet.training.quantize import ap2, ap2_ste, binarize

__all__ = [
    "BinaryActivation",
    "BinaryConv2d",
    "BinaryLinear",
    "ExactBatchNorm1d",
    "ExactBatchNorm2d",
    "FixedPointInput",
    "ShiftBatchNorm1d",
    "ShiftBatchNorm2d",
    "binary_layers",
    "clip_weights_",
    "set_compute_dtype",
    "sync_batchnorm_",
]


class FixedPointInput(nn.Module):
    """uint8 pixels → the network's 8-bit fixed-point input, the one place where this happens.

    x = (p − zero_point) · scale, by default (p − 128) · 2⁻⁷ ∈ [−1, 127/128]: a signed 8-bit
    fixed-point number with 7 fractional bits, i.e. the Theano code's [−1, 1] input range. Every
    value is exact in float32 and bfloat16, and a first layer with ±1 weights computes
    s = scale · (Σ pᵢ wᵢ − zero_point · Σ wᵢ), which the engine evaluates on the bit planes of p
    (Algorithm 5). Zero padding of x corresponds to pixels equal to ``zero_point``.
    """

    def __init__(self, zero_point: int = 128, scale: float = 2.0**-7) -> None:
        super().__init__()
        if not 0 <= zero_point <= 255:
            raise ValueError(f"FixedPointInput: zero_point must be in 0..255, got {zero_point}")
        if not (scale > 0 and math.log2(scale) == round(math.log2(scale))):
            raise ValueError(f"FixedPointInput: scale must be a positive power of two, got {scale}")
        self.zero_point = int(zero_point)
        self.scale = float(scale)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(
                f"FixedPointInput expects uint8 images (raw pixels), got dtype {images.dtype}; "
                "pass the uint8 arrays from binarynet.data unchanged"
            )
        return (images.to(torch.float32) - self.zero_point) * self.scale

    def extra_repr(self) -> str:
        return f"zero_point={self.zero_point}, scale={self.scale}"


class BinaryActivation(nn.Module):
    """Binary hidden unit: sign(x) (or stochastic ±1 while training) with the saturating STE."""

    def __init__(self, stochastic: bool = False) -> None:
        super().__init__()
        self.stochastic = stochastic
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stochastic = self.stochastic and self.training
        return binarize(x, stochastic=stochastic, generator=self.generator if stochastic else None)

    def extra_repr(self) -> str:
        return f"stochastic={self.stochastic}"


class _BinaryWeightMixin:
    """Shared behaviour of layers with binarized weights."""

    weight: torch.Tensor  # as torch.nn.Linear / Conv2d declare them
    bias: torch.Tensor | None
    training: bool
    binarize_input: bool
    stochastic: bool
    compute_dtype: torch.dtype
    generator: torch.Generator | None

    def _init_binary(self, binarize_input: bool, stochastic: bool) -> None:
        self.binarize_input = binarize_input
        self.stochastic = stochastic
        self.compute_dtype = torch.float32
        self.generator = None

    def reset_parameters(self) -> None:
        """Latent weights uniform in [−1, 1] (the paper's H = 1); bias zero."""
        with torch.no_grad():
            self.weight.uniform_(-1.0, 1.0)
            if self.bias is not None:
                self.bias.zero_()

    def binary_weight(self) -> torch.Tensor:
        """sign(W) as float32, the weights the layer computes with in evaluation mode."""
        return binarize(self.weight.detach())

    def _operands(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        training = self.training
        dtype = self.compute_dtype if training else torch.float32
        stochastic = self.stochastic and training
        w_b = binarize(
            self.weight, stochastic, self.generator if stochastic else None, out_dtype=dtype
        )
        x_in = binarize(x, out_dtype=dtype) if self.binarize_input else x.to(dtype)
        return x_in, w_b

    def _finish(self, out: torch.Tensor, bias_shape: tuple[int, ...]) -> torch.Tensor:
        out = out.to(torch.float32)
        if self.bias is not None:  # a separate add, so the export can replay it exactly
            out = out + self.bias.view(bias_shape)
        return out

    @property
    def fan_in_fan_out(self) -> tuple[int, int]:
        """(fan_in, fan_out) as the paper's code counts them for the Glorot learning-rate scale."""
        raise NotImplementedError


# torch.nn.Linear assigns bias without declaring it (mypy infers Parameter); it is None when
# bias=False, which is what the mixin's ``Tensor | None`` says.
class BinaryLinear(_BinaryWeightMixin, nn.Linear):  # type: ignore[misc]
    """y = x_b · sign(W)ᵀ (+ b), latent W ∈ [−1, 1]; the torch.nn.Linear signature.

    Args:
        in_features, out_features: as :class:`torch.nn.Linear`.
        bias: add a real bias after the binary product. Off by default: every binary layer of a
            BNN is followed by batch norm, which makes a bias redundant.
        binarize_input: binarize the input with sign() (and the STE). The paper's networks leave
            it off and binarize hidden units with :class:`BinaryActivation`; the first layer takes
            the 8-bit fixed-point input as is.
        stochastic: stochastic weight binarization (Eq. 2) while training; sign() in evaluation.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = False,
        binarize_input: bool = True,
        stochastic: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        self._init_binary(binarize_input, stochastic)
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in, w_b = self._operands(x)
        return self._finish(F.linear(x_in, w_b), (self.out_features,))

    @property
    def fan_in_fan_out(self) -> tuple[int, int]:
        return self.in_features, self.out_features

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, binarize_input={self.binarize_input}, "
            f"stochastic={self.stochastic}"
        )


class BinaryConv2d(_BinaryWeightMixin, nn.Conv2d):
    """2-D convolution with binarized weights sign(W), latent W ∈ [−1, 1].

    The torch.nn.Conv2d signature. ``pad_value`` is the value of the padded input positions:
    0 (torch's zero padding, the third value beside ±1: a padded tap contributes 0), or +1 / −1
    (padding with a ±1 activation, Larq's "same-one": every tap is a ±1 product, so the layer
    is a plain binary convolution over the padded input, which XNOR hardware such as FINN's,
    whose 1-bit streams have no 0, computes without a border correction). A nonzero
    ``pad_value`` is for ±1 inputs (a layer after a binary activation); the exported first,
    8-bit layer pads with 0. See :class:`BinaryLinear` for ``bias``, ``binarize_input`` and
    ``stochastic``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = False,
        binarize_input: bool = True,
        stochastic: bool = False,
        device=None,
        dtype=None,
        pad_value: int = 0,
    ) -> None:
        if isinstance(pad_value, bool) or pad_value not in (-1, 0, 1):
            raise ValueError(f"pad_value must be 0, 1 or -1, got {pad_value!r}")
        if pad_value and isinstance(padding, str):
            raise ValueError(
                f"pad_value={pad_value} needs a numeric padding, got padding={padding!r}"
            )
        self._init_binary(binarize_input, stochastic)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            bias=bias,
            device=device,
            dtype=dtype,
        )
        self.pad_value = pad_value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in, w_b = self._operands(x)
        padding = self.padding
        if self.pad_value:
            ph, pw = (int(p) for p in self.padding)  # numeric (checked in __init__)
            x_in = F.pad(x_in, (pw, pw, ph, ph), value=float(self.pad_value))
            padding = (0, 0)
        out = F.conv2d(x_in, w_b, None, self.stride, padding)
        return self._finish(out, (1, self.out_channels, 1, 1))

    @property
    def fan_in_fan_out(self) -> tuple[int, int]:
        # The paper's code: fan_in = kh·kw·C_in, fan_out = kh·kw·C_out (pooling ignored).
        taps = self.kernel_size[0] * self.kernel_size[1]
        return taps * self.in_channels, taps * self.out_channels

    def extra_repr(self) -> str:
        pad = f", pad_value={self.pad_value}" if self.pad_value else ""
        return (
            f"{super().extra_repr()}{pad}, binarize_input={self.binarize_input}, "
            f"stochastic={self.stochastic}"
        )


def _distributed_world() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _AllReduceSum(torch.autograd.Function):
    """y = Σ_r x_r over the processes r of the default group, differentiable.

    Every process's loss depends on y, so ∂(Σ_r L_r)/∂x_r = Σ_r ∂L_r/∂y: the backward pass is
    the same sum of the incoming gradients. (torch.distributed.nn.functional.all_reduce does
    this too but is deprecated with a FutureWarning.)
    """

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        torch.distributed.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        g = grad.clone()
        torch.distributed.all_reduce(g)
        return g


class _ExactEvalBatchNorm(_BatchNorm):
    """Batch norm whose evaluation forward is exactly ``x * scale + shift`` in float32.

    With ``sync_stats = True`` (see :func:`sync_batchnorm_`) and an initialised
    ``torch.distributed`` process group, training-mode statistics are computed over the global
    batch of all processes (sums all-reduced with a differentiable all-reduce), so every process
    normalises alike and keeps identical running statistics.
    """

    sync_stats: bool = False
    # torch declares these Optional (absent without track_running_stats); every path here that
    # reads them runs only when running statistics are tracked.
    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def _stats_dims(self, x: torch.Tensor) -> list[int]:
        return [d for d in range(x.dim()) if d != 1]

    def _synced(self) -> bool:
        return self.sync_stats and _distributed_world() > 1

    def _batch_mean(self, t: torch.Tensor, dims: list[int]) -> tuple[torch.Tensor, int]:
        """(per-channel mean of ``t`` over ``dims`` and the batch, number of values averaged),
        over all processes when synchronised."""
        count = t.numel() // t.shape[1]
        if not self._synced():
            return t.mean(dims), count
        local = torch.cat([t.sum(dims), t.new_tensor([float(count)])])
        total = _AllReduceSum.apply(local)  # SUM over processes; differentiable
        return total[:-1] / total[-1], int(total[-1].detach())

    def _channel_view(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return v.view([1, -1] + [1] * (x.dim() - 2))

    def eval_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel float32 ``(scale, shift)`` with eval output ``x * scale + shift``."""
        raise NotImplementedError

    def _uses_batch_stats(self) -> bool:
        return self.training or not self.track_running_stats

    def _momentum(self) -> float:
        # torch.nn.BatchNorm semantics: momentum=None is a cumulative moving average.
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def _eval_forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.eval_affine()
        return x * self._channel_view(scale, x) + self._channel_view(shift, x)

    def _normalize_batch(
        self,
        x: torch.Tensor,
        variance_term: Callable[[torch.Tensor], torch.Tensor],
        rounded: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """Training forward with batch statistics:
        y = C · rounded(1/√(mean(variance_term(C)) + ε)) · rounded(γ) + β with C = x − mean(x),
        updating the running statistics. Standard BN: variance_term = C², rounded = identity;
        shift BN (Algorithm 3): variance_term = C·AP2(C), rounded = AP2."""
        dims = self._stats_dims(x)
        mean, m = self._batch_mean(x, dims)
        centred = x - self._channel_view(mean, x)
        var, _ = self._batch_mean(variance_term(centred), dims)
        y = centred * self._channel_view(rounded(torch.rsqrt(var + self.eps)), x)
        if self.weight is not None:
            y = y * self._channel_view(rounded(self.weight), x)
        if self.bias is not None:
            y = y + self._channel_view(self.bias, x)
        if self.training and self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), m)
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, m: int) -> None:
        """torch.nn.BatchNorm's update: running ← (1 − momentum)·running + momentum·batch, with
        the unbiased batch variance var·m/(m − 1)."""
        self.num_batches_tracked.add_(1)
        momentum = self._momentum()
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
        unbiased = var * (m / (m - 1))
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)


class ExactBatchNorm1d(_ExactEvalBatchNorm):
    """torch.nn.BatchNorm1d (same arguments, state_dict and training behaviour) whose
    evaluation forward is pinned to ``x * scale + shift``, scale = γ/√(var + ε),
    shift = β − mean·scale (float32), so that export can fold it into exact thresholds."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__} expects a 2-D or 3-D input, got {x.dim()}-D")

    def eval_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            scale = torch.rsqrt(self.running_var.float() + self.eps)
            if self.weight is not None:
                scale = scale * self.weight.float()
            shift = -self.running_mean.float() * scale
            if self.bias is not None:
                shift = shift + self.bias.float()
        return scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not self._uses_batch_stats():
            return self._eval_forward(x)
        if not self._synced():
            return super().forward(x)
        # Global-batch statistics: the textbook batch norm with all-reduced moments.
        return self._normalize_batch(x, torch.square, lambda v: v)


class ExactBatchNorm2d(ExactBatchNorm1d):
    """torch.nn.BatchNorm2d with the pinned evaluation forward of :class:`ExactBatchNorm1d`."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"{type(self).__name__} expects a 4-D input, got {x.dim()}-D")


class ShiftBatchNorm1d(_ExactEvalBatchNorm):
    """Shift-based batch normalization, Algorithm 3 of the paper.

    Over a mini-batch (all dimensions but the channel one), with AP2(x) = sign(x)·2^round(log2|x|)::

        μ_B  = mean(x)                              mini-batch mean
        C(x) = x − μ_B                              centred input
        σ²_B = mean(C(x) · AP2(C(x)))               approximate variance (a shift per element)
        x̂    = C(x) · AP2(1 / √(σ²_B + ε))          normalize (a shift per channel)
        y    = AP2(γ) · x̂ + β                       scale (a shift) and shift

    Gradients pass through every AP2 as identity (straight-through), so the backward pass is the
    standard batch-norm gradient evaluated at the rounded values.

    Running statistics follow torch.nn.BatchNorm: mean and the *approximate* variance σ²_B (made
    unbiased with m/(m−1)) are averaged with ``momentum``. In evaluation mode::

        y = x · scale + shift,   scale = AP2(γ) · AP2(1/√(running_var + ε)),
                                 shift = β − running_mean · scale

    where ``scale`` is itself a power of two, so evaluation is a shift and an add.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__} expects a 2-D or 3-D input, got {x.dim()}-D")

    def eval_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            scale = ap2(torch.rsqrt(self.running_var.float() + self.eps))
            if self.weight is not None:
                scale = scale * ap2(self.weight.float())
            shift = -self.running_mean.float() * scale
            if self.bias is not None:
                shift = shift + self.bias.float()
        return scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not self._uses_batch_stats():
            return self._eval_forward(x)
        if x.numel() // x.shape[1] < 2 and not self._synced():
            raise ValueError(
                f"{type(self).__name__}: training needs more than 1 value per channel, got input "
                f"of shape {tuple(x.shape)}"
            )
        return self._normalize_batch(x, lambda c: c * ap2_ste(c), ap2_ste)


class ShiftBatchNorm2d(ShiftBatchNorm1d):
    """Shift-based batch normalization (Algorithm 3) over (N, H, W) for each channel."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"{type(self).__name__} expects a 4-D input, got {x.dim()}-D")


def binary_layers(model: nn.Module) -> Iterator[BinaryLinear | BinaryConv2d]:
    """The layers of ``model`` with binarized latent weights, in module order."""
    for module in model.modules():
        if isinstance(module, (BinaryLinear, BinaryConv2d)):
            yield module


@torch.no_grad()
def clip_weights_(model: nn.Module, bound: float = 1.0) -> None:
    """Clip every latent binary weight of ``model`` to [−bound, bound] in place.

    Call it after every optimizer step (the paper's Algorithm 1, "clip(W, −1, 1)"): latent
    weights that drift past ±1 no longer change their sign and would stop learning.
    """
    for layer in binary_layers(model):
        layer.weight.clamp_(-bound, bound)


def sync_batchnorm_(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Make every binarynet batch norm of ``model`` compute training statistics over the global
    batch of all ``torch.distributed`` processes (a no-op without a process group)."""
    for module in model.modules():
        if isinstance(module, _ExactEvalBatchNorm):
            module.sync_stats = enabled
    return model


def set_compute_dtype(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Run the training-mode matmuls of every binary layer in ``dtype`` (float32 or bfloat16).

    bfloat16 holds ±1 and 8-bit fixed-point operands exactly; products accumulate in float32
    inside oneDNN, outputs and gradients are rounded to bfloat16. Evaluation stays float32.
    """
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"compute dtype must be torch.float32 or torch.bfloat16, got {dtype}")
    for layer in binary_layers(model):
        layer.compute_dtype = dtype
    return model
