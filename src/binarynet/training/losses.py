"""Square hinge loss, the paper's training criterion.

For scores y ∈ ℝ^{N×C} and targets t ∈ {−1, +1}^{N×C} (+1 for the true class, −1 elsewhere)::

    L = mean over all N·C entries of max(0, 1 − t·y)²

as in the paper's Theano code (``T.mean(T.sqr(T.maximum(0., 1. - target * output)))``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SquareHingeLoss", "pm1_targets", "square_hinge_loss"]


def pm1_targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices [N] → ±1 one-hot targets [N, num_classes] (float32)."""
    if labels.dim() != 1 or labels.dtype.is_floating_point:
        raise ValueError(
            f"pm1_targets expects a 1-D integer tensor of class indices, got "
            f"dtype {labels.dtype} and shape {tuple(labels.shape)}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"class indices must be in 0..{num_classes - 1}, got values in "
            f"{int(labels.min())}..{int(labels.max())}"
        )
    targets = torch.full((labels.shape[0], num_classes), -1.0, device=labels.device)
    targets.scatter_(1, labels.long().unsqueeze(1), 1.0)
    return targets


def square_hinge_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Square hinge loss; ``targets`` are class indices [N] or ±1 targets shaped like ``scores``."""
    if scores.dim() != 2:
        raise ValueError(f"scores must be [N, C], got shape {tuple(scores.shape)}")
    if targets.dim() == 1:
        targets = pm1_targets(targets, scores.shape[1])
    elif targets.shape != scores.shape:
        raise ValueError(
            f"±1 targets must have the scores' shape {tuple(scores.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    return torch.clamp(1.0 - targets.to(scores.dtype) * scores, min=0.0).square().mean()


class SquareHingeLoss(nn.Module):
    """Module form of :func:`square_hinge_loss`."""

    def forward(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return square_hinge_loss(scores, targets)
