"""Trained-looking batch norms for the untrained models the benchmarks and tools export.

Random weights with default batch-norm statistics (mean 0, variance 1, γ = 1, β = 0) make every
threshold sit at zero; ``randomise_batchnorm_`` gives each batch norm non-trivial running
statistics and affine parameters, as after training, so that exports and kernels see realistic
thresholds. Used by ``benchmarks/engine.py`` and ``tools/engine_golden.py`` (``benchmarks/mcu.py``
keeps its own statistics: its published instruction counts were measured with them).
"""

from __future__ import annotations

import torch
from torch import nn


def randomise_batchnorm_(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial running statistics and affine parameters (as after training), in place."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 2)
                m.running_var.copy_(torch.rand(n, generator=g) * 4 + 0.5)
                if m.affine:
                    m.weight.copy_(torch.randn(n, generator=g))
                    m.bias.copy_(torch.randn(n, generator=g) * 0.5)
    return model
