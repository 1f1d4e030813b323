"""The dense operations of ``binarynet.backends.engine``'s ``Kernels`` on the GPU, NumPy in and out.

:class:`GpuKernels` has the signatures of ``Kernels.bgemm``, ``Kernels.bgemm_threshold`` and
``Kernels.bitplane_gemm`` (uint64 words, int32 thresholds and results, NumPy arrays) and gives
bit-identical results. Weights are uploaded once and kept on the device (keyed by the array
object, which the cache keeps alive); activations travel each call. It is the hook by which the
torch-free engine can use the GPU when ``gpu_available()``; a caller that keeps the activations
on the device between layers uses :mod:`binarynet.backends.gpu.bgemm` on tensors directly (as
``benchmarks/gpu_bgemm.py`` does).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

# The module, not the function binarynet.backends.gpu.bgemm that shadows it as a package attribute.
_g = importlib.import_module("binarynet.backends.gpu.bgemm")

__all__ = ["GpuKernels", "gpu_available"]


def gpu_available() -> bool:
    """torch and triton are installed and torch sees a CUDA (or ROCm) device."""
    if not _g.triton_available():
        return False
    import torch

    return bool(torch.cuda.is_available())


class GpuKernels:
    """bgemm / bgemm_threshold / bitplane_gemm on ``device`` (default ``"cuda"``; ``"cpu"``
    runs the Triton interpreter, for tests)."""

    def __init__(self, device: str = "cuda") -> None:
        torch = _g._torch()
        self.device = torch.device(device)
        _g._kernels_for(torch.empty(0, device=self.device))  # fail early without triton
        self._weights: dict[int, tuple[np.ndarray, Any]] = {}

    def _weight(self, w: np.ndarray) -> Any:
        hit = self._weights.get(id(w))
        if hit is not None and hit[0] is w:
            return hit[1]
        t = _g.as_words(w, device=self.device)
        self._weights[id(w)] = (w, t)
        return t

    def clear(self) -> None:
        """Forget the uploaded weights."""
        self._weights.clear()

    def bgemm(self, a: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
        """int32 [M, N]: a [M, W] · w [N, W], ±1 rows of k real elements."""
        out = _g.bgemm(_g.as_words(a, device=self.device), self._weight(w), k)
        return out.cpu().numpy()

    def bgemm_threshold(
        self, a: np.ndarray, w: np.ndarray, k: int, lo: np.ndarray, hi: np.ndarray
    ) -> np.ndarray:
        """uint64 [M, ceil(N/64)]: +1 iff lo ≤ (a · w) ≤ hi per output column."""
        out = _g.bgemm_threshold(_g.as_words(a, device=self.device), self._weight(w), k, lo, hi)
        return _g.to_uint64(out)

    def bitplane_gemm(self, x: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
        """int32 [M, N]: Σᵢ xᵢ·wᵢ for uint8 x [M, k] and ±1 w (Algorithm 5)."""
        torch = _g._torch()
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8)).to(self.device)
        return _g.bitplane_gemm(xt, self._weight(w), k).cpu().numpy()
