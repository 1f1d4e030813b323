"""Shift-based AdaMax (Algorithm 4) and the per-layer Glorot learning-rate scale.

Both follow the paper's code: the Theano code scales the update of each binary layer's latent
weights by 1/√(1.5 / (fan_in + fan_out)) (Glorot & Bengio, 2010) and uses Adam; the Torch7 code
rounds that scale to a power of two and uses the shift-based AdaMax below. Latent weights are
clipped to [−1, 1] after each step by :func:`binarynet.training.nn.clip_weights_`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from binarynet import _kernels
from binarynet.training.nn import BinaryConv2d, BinaryLinear, binary_layers
from binarynet.training.quantize import ap2_positive_, ap2_scalar

__all__ = ["ShiftAdaMax", "glorot_lr_scale", "param_groups"]


def glorot_lr_scale(layer: BinaryLinear | BinaryConv2d, pow2: bool = False) -> float:
    """The paper's per-layer learning-rate scale 1/√(1.5 / (fan_in + fan_out)).

    With ``pow2=True`` the scale is rounded to the nearest power of two (AP2), as the Torch7 code
    does so that the scaled update remains a shift.
    """
    fan_in, fan_out = layer.fan_in_fan_out
    scale = 1.0 / math.sqrt(1.5 / (fan_in + fan_out))
    return ap2_scalar(scale) if pow2 else scale


def param_groups(
    model: nn.Module, lr: float, glorot: bool = True, pow2: bool = False
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: one per binary layer's latent weights, one for the rest.

    Each binary weight group gets ``lr · glorot_lr_scale(layer)`` (or ``lr`` when
    ``glorot=False``); batch-norm parameters and any other parameters get ``lr``. Learning-rate
    schedulers then scale every group alike. Each group also carries a ``name``.
    """
    groups: list[dict[str, Any]] = []
    binary_ids: set[int] = set()
    names = {id(p): n for n, p in model.named_parameters()}
    for layer in binary_layers(model):
        scale = glorot_lr_scale(layer, pow2) if glorot else 1.0
        groups.append({"params": [layer.weight], "lr": lr * scale, "name": names[id(layer.weight)]})
        binary_ids.add(id(layer.weight))
    rest = [p for p in model.parameters() if id(p) not in binary_ids]
    if rest:
        groups.append({"params": rest, "lr": lr, "name": "other"})
    return groups


class ShiftAdaMax(Optimizer):
    r"""Shift-based AdaMax, Algorithm 4 of the paper (Kingma & Ba's AdaMax with power-of-two
    step sizes, as in the authors' Torch7 code).

    For each parameter θ with gradient g at step t::

        m_t = β₁·m_{t−1} + (1 − β₁)·g_t                       biased first moment
        v_t = max(β₂·v_{t−1}, |g_t|)                          exponentially weighted infinity norm
        θ_t = θ_{t−1} − AP2(α / (1 − β₁ᵗ)) · m_t / AP2(max(v_t, ε))

    where AP2(x) = sign(x)·2^round(log2|x|): the bias-corrected step size and the per-element
    normalisation are both powers of two, so the update is a pair of shifts. ``ε`` only guards
    the elements whose gradient has always been zero (there m_t = 0 and the update is 0).
    ``v`` is stored unrounded; the rounding is applied when dividing.

    Defaults are the paper's: α = 2⁻¹⁰, 1 − β₁ = 2⁻³, 1 − β₂ = 2⁻¹⁰.

    Args:
        params: parameters or parameter groups (see :func:`param_groups` for Glorot scaling).
        lr: α.
        betas: (β₁, β₂).
        eps: lower bound of v in the denominator.
        maximize: maximize the objective instead of minimizing it.
        fused: run the update of each CPU float32 parameter as one pass of the compiled kernel
            ``binarynet._kernels.shift_adamax_step`` (the update is memory-bound: about a dozen
            torch operations, each a pass over the tensor, become one). It rounds exactly as the
            torch operations do, so results are identical (tested). ``None`` (default): the
            kernel wherever it applies (CPU, float32, contiguous), torch operations elsewhere;
            ``False``: torch operations everywhere; ``True``: the kernel, or an error for a
            parameter it cannot take.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 2.0**-10,
        betas: tuple[float, float] = (1 - 2.0**-3, 1 - 2.0**-10),
        eps: float = 2.0**-40,
        maximize: bool = False,
        fused: bool | None = None,
    ) -> None:
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(
                f"ShiftAdaMax: invalid learning rate {lr!r}; expected a finite value > 0"
            )
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"ShiftAdaMax: invalid betas {betas!r}; expected two values in [0, 1)")
        if not eps > 0:
            raise ValueError(f"ShiftAdaMax: invalid eps {eps!r}; expected a value > 0")
        if fused not in (None, True, False):
            raise ValueError(f"ShiftAdaMax: fused must be None, True or False, got {fused!r}")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "maximize": maximize}
        super().__init__(params, defaults)
        self.fused = fused

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the loss, as in torch.optim."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("ShiftAdaMax does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_inf"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = int(state["step"].item())
                exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
                step_size = ap2_scalar(group["lr"] / (1 - beta1**t))
                if self._use_kernel(p, exp_avg, exp_inf):
                    _kernels.shift_adamax_step(
                        p.detach().view(-1).numpy(),
                        p.grad.detach().view(-1).numpy(),
                        exp_avg.view(-1).numpy(),
                        exp_inf.view(-1).numpy(),
                        one_minus_beta1=1 - beta1,
                        beta2=beta2,
                        eps=group["eps"],
                        step=step_size,
                        maximize=group["maximize"],
                        threads=min(torch.get_num_threads(), 1024),
                    )
                    for tensor in (p, exp_avg, exp_inf):  # written behind autograd's back
                        torch.autograd.graph.increment_version(tensor)
                    continue
                grad = -p.grad if group["maximize"] else p.grad
                exp_avg.lerp_(grad, 1 - beta1)  # β₁·m + (1 − β₁)·g
                torch.maximum(exp_inf.mul_(beta2), grad.abs(), out=exp_inf)
                denom = ap2_positive_(exp_inf.clamp(min=group["eps"]))
                p.addcdiv_(exp_avg, denom, value=-step_size)
        return loss

    def _use_kernel(self, p: torch.Tensor, exp_avg: torch.Tensor, exp_inf: torch.Tensor) -> bool:
        if self.fused is False:
            return False
        grad = p.grad
        assert grad is not None  # step() skips parameters without a gradient
        tensors = (p, grad, exp_avg, exp_inf)
        ok = all(
            t.device.type == "cpu"
            and t.dtype == torch.float32
            and t.is_contiguous()
            and t.layout == torch.strided
            for t in tensors
        )
        if self.fused and not ok:
            raise ValueError(
                "ShiftAdaMax(fused=True) takes contiguous float32 CPU parameters, gradients and "
                f"state; got a {p.dtype} parameter of shape {tuple(p.shape)} on {p.device} "
                f"(gradient {grad.dtype}, contiguous: {grad.is_contiguous()})"
            )
        return ok
