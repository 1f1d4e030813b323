"""The engine's view of the compiled kernels (``binarynet._kernels``).

:class:`Kernels` binds a kernel variant and a thread count to the kernels the engine calls.
One step has no compiled function and runs in NumPy: max-pooling with a non-square window or
stride (the compiled pools take one size), which no model of :mod:`binarynet.training.models` has.

The first layer (uint8 input) runs on the byte GEMM (``u8gemm``, ``u8conv2d``: VNNI on AVX-512)
with weights prepared once (:meth:`Kernels.u8_weights`); ``bitplane_gemm`` (the paper's
Algorithm 5 on bit planes) computes the same integers and stays available.

Bit convention (``csrc/bitpack.h``): bit 1 = −1, bit 0 = +1, packed along the reduction axis
into uint64 words, padding bits zero; dot(a, w) = K − 2·popcount(a ⊕ w).
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from binarynet import _kernels

__all__ = ["MAX_THREADS", "Kernels", "available_kernels", "threads_used", "threshold_bits"]

MAX_THREADS = 256
"""The most threads a compiled op runs on (``kMaxThreads`` of ``csrc/threadpool.cc``: its workers
live as long as the process); a larger thread count runs as this many."""


def available_kernels() -> list[str]:
    """The bgemm/bconv kernel variants this build and CPU can run, best last."""
    return list(_kernels.available_kernels())


def threads_used(threads: int | None) -> int:
    """The threads a compiled op runs on for a ``threads`` setting (None: the kernels' global
    one, ``_kernels.get_num_threads()``): at most :data:`MAX_THREADS`, and never more than the
    op has tasks."""
    return min(threads or _kernels.get_num_threads(), MAX_THREADS)


def threshold_bits(
    y: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, kernel: str = "auto", threads: int = 0
) -> np.ndarray:
    """int32 ``[..., C]`` → packed ``[..., ceil(C/64)]``: +1 (bit 0) iff lo ≤ y ≤ hi per channel.

    ``kernel`` / ``threads`` as every compiled op takes them (``Kernels.threshold_bits`` passes
    its own)."""
    c = y.shape[-1]
    packed = _kernels.threshold_bits(
        np.ascontiguousarray(y).reshape(-1, c), lo, hi, kernel=kernel, threads=threads
    )
    return np.asarray(packed).reshape(*y.shape[:-1], packed.shape[-1])


class _Opts(TypedDict):
    """The keyword arguments every compiled op takes."""

    kernel: str
    threads: int


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """[B, Ho, Wo, C, kh, kw] strided windows of x [B, H, W, C] (floor mode)."""
    win = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(1, 2))
    return win[:, :: stride[0], :: stride[1]]


class Kernels:
    """The compiled kernels with one kernel variant and thread count.

    ``kernel=None`` lets the kernels pick (``_kernels.default_kernel()``); ``threads=None`` uses
    the kernels' global setting (``_kernels.get_num_threads()``). Every compiled op takes both
    (``**self._opts``); the ops with fewer variants than the GEMMs (pooling, thresholds, packing,
    im2col) run their reference loops for ``kernel="reference"`` where they have some, and their
    one optimised loop for any other name (``csrc/README.md``).
    """

    def __init__(self, kernel: str | None = None, threads: int | None = None) -> None:
        if kernel is not None and kernel not in available_kernels():
            raise ValueError(
                f"unknown kernel {kernel!r}; this build and CPU offer {available_kernels()}"
            )
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024
        ):
            # 1024: the kernels' own limit, checked here so that the error comes at once.
            raise ValueError(
                f"threads must be a positive integer (at most 1024) or None, got {threads!r}"
            )
        self.kernel = kernel
        self.threads = threads
        self._opts: _Opts = {"kernel": kernel or "auto", "threads": threads or 0}

    def bgemm(self, a: np.ndarray, w: np.ndarray | _kernels.BinaryWeights, k: int) -> np.ndarray:
        """int32 [M, N]: a [M, W] · w [N, W], ±1 rows of k real elements."""
        return _kernels.bgemm(a, w, k, **self._opts)

    def bgemm_threshold(
        self,
        a: np.ndarray,
        w: np.ndarray | _kernels.BinaryWeights,
        k: int,
        lo: np.ndarray,
        hi: np.ndarray,
    ) -> np.ndarray:
        """packed [M, ceil(N/64)]: +1 iff lo ≤ (a · w) ≤ hi per output column."""
        return _kernels.bgemm_threshold(a, w, k, lo, hi, **self._opts)

    def threshold_bits(self, y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """packed ``[..., ceil(C/64)]``: +1 iff lo ≤ y ≤ hi per channel of int32 ``[..., C]``."""
        return threshold_bits(y, lo, hi, **self._opts)

    def bitplane_gemm(self, x: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
        """int32 [M, N]: Σᵢ xᵢ·wᵢ for uint8 x [M, k] and ±1 w (Algorithm 5)."""
        return _kernels.bitplane_gemm(x, w, k, **self._opts)

    @staticmethod
    def binary_weights(w: np.ndarray, k: int) -> _kernels.BinaryWeights:
        """A dense layer's packed ±1 rows w [N, W] (k bits) with the panel copy that the batch-1
        path streams (w is referenced: never modify it afterwards)."""
        return _kernels.BinaryWeights(w, k)

    @staticmethod
    def u8_weights(w: np.ndarray, k: int) -> _kernels.U8Weights:
        """The first layer's packed ±1 rows w [N, W] (k real bits) prepared for the byte GEMM."""
        return _kernels.U8Weights(w, k)

    def u8gemm(self, x: np.ndarray, w: _kernels.U8Weights) -> np.ndarray:
        """int32 [M, N]: Σᵢ xᵢ·wᵢ for uint8 x [M, k] (the values of :meth:`bitplane_gemm`)."""
        return _kernels.u8gemm(x, w, **self._opts)

    def u8gemm_threshold(
        self, x: np.ndarray, w: _kernels.U8Weights, lo: np.ndarray, hi: np.ndarray
    ) -> np.ndarray:
        """packed [M, ceil(N/64)]: +1 iff lo ≤ u8gemm(x, w) ≤ hi per output column."""
        return _kernels.u8gemm_threshold(x, w, lo, hi, **self._opts)

    def u8conv2d(
        self,
        x: np.ndarray,
        w: _kernels.U8Weights,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        pad_value: int,
    ) -> np.ndarray:
        """int32 [B, Ho, Wo, N]: im2col_u8(x, ...) · wᵀ, without the im2col matrix."""
        return _kernels.u8conv2d(x, w, *kernel, stride, padding, pad_value, **self._opts)

    def u8conv2d_threshold(
        self,
        x: np.ndarray,
        w: _kernels.U8Weights,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        pad_value: int,
        lo: np.ndarray,
        hi: np.ndarray,
    ) -> np.ndarray:
        """packed [B, Ho, Wo, ceil(N/64)]: +1 iff lo ≤ u8conv2d(...) ≤ hi per channel."""
        return _kernels.u8conv2d_threshold(
            x, w, *kernel, stride, padding, pad_value, lo, hi, **self._opts
        )

    def im2col_u8(
        self,
        x: np.ndarray,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        pad_value: int,
    ) -> np.ndarray:
        """uint8 [B, Ho, Wo, kh·kw·C]: patches of x [B, H, W, C], taps in (i, j, c) order."""
        return _kernels.im2col_u8(x, kernel[0], kernel[1], stride, padding, pad_value, **self._opts)

    def bconv2d(
        self,
        x: np.ndarray,
        w: np.ndarray,
        c: int,
        stride: tuple[int, int],
        padding: tuple[int, int],
    ) -> np.ndarray:
        """int32 [B, Ho, Wo, O]: packed x ⋆ w, padded taps contributing 0."""
        return _kernels.bconv2d(x, w, c, stride, padding, **self._opts)

    def bconv2d_threshold(
        self,
        x: np.ndarray,
        w: np.ndarray,
        c: int,
        stride: tuple[int, int],
        padding: tuple[int, int],
        lo: np.ndarray,
        hi: np.ndarray,
    ) -> np.ndarray:
        """packed [B, Ho, Wo, ceil(O/64)]: +1 iff lo ≤ bconv2d(...) ≤ hi per channel."""
        return _kernels.bconv2d_threshold(x, w, c, stride, padding, lo, hi, **self._opts)

    def maxpool2d_int32(
        self, x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]
    ) -> np.ndarray:
        """int32 [B, Ho, Wo, C]: window maxima (no padding, floor mode)."""
        if kernel[0] == kernel[1] and stride[0] == stride[1]:
            return _kernels.maxpool2d_int32(x, kernel[0], stride[0], **self._opts)
        return _windows(x, kernel, stride).max(axis=(-2, -1))

    def maxpool2d_bits(
        self,
        x: np.ndarray,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        and_mask: np.ndarray,
    ) -> np.ndarray:
        """packed [B, Ho, Wo, W]: per bit the AND of the window where ``and_mask`` has a 1, the
        OR elsewhere (the pool of thresholded values; see :mod:`binarynet.export`)."""
        if kernel[0] == kernel[1] and stride[0] == stride[1]:
            return _kernels.maxpool2d_bits(x, kernel[0], stride[0], and_mask, **self._opts)
        win = _windows(x, kernel, stride)
        both = np.bitwise_and.reduce(win, axis=(-2, -1))
        either = np.bitwise_or.reduce(win, axis=(-2, -1))
        return (both & and_mask) | (either & ~and_mask)
