"""Type stub of the compiled module binarynet._kernels (csrc/bindings/).

Bit convention: bit 1 = -1, bit 0 = +1 (sign(0) = +1), packed along the reduction axis into
uint64 words (element k in bit k % 64 of word k // 64), padding bits zero. All arrays are NumPy,
C-contiguous; bad arguments raise ValueError.

Every op takes the keyword arguments ``kernel`` and ``threads``. ``kernel`` is "auto"
(default_kernel()) or one of available_kernels() ("reference", "portable", "avx2-table", "avx2",
"avx512", "amx-tiles", "amx", "neon", "neon-dotprod"), checked the same way for every op;
``threads=0`` means get_num_threads(). Variants per op: the GEMMs and convolutions have all of
them; the max pools and threshold_bits have the reference loops ("reference") and one optimised
baseline loop (every other name); the packing helpers, im2col_u8 and the training ops have one
implementation, which every valid name selects.
"""

from typing import Literal

import numpy as np
import numpy.typing as npt

_U64 = npt.NDArray[np.uint64]
_I32 = npt.NDArray[np.int32]
_U8 = npt.NDArray[np.uint8]
_I8 = npt.NDArray[np.int8]
_Kernel = (
    Literal[
        "auto",
        "reference",
        "portable",
        "avx2-table",
        "avx2",
        "avx512",
        "amx-tiles",
        "amx",
        "neon",
        "neon-dotprod",
    ]
    | str
)
_Pair = int | tuple[int, int]

_F32 = npt.NDArray[np.float32]

def shift_adamax_step(
    p: _F32,
    grad: _F32,
    exp_avg: _F32,
    exp_inf: _F32,
    *,
    one_minus_beta1: float,
    beta2: float,
    eps: float,
    step: float,
    maximize: bool = False,
    kernel: _Kernel = "auto",
    threads: int = 0,
) -> None:
    """Shift AdaMax (Algorithm 4) in place on float32 1-D arrays, one pass (training side)."""

def sign_values(x: _F32, out: _F32, *, kernel: _Kernel = "auto", threads: int = 0) -> None:
    """out = copysign(1, x + 0.0) on float32 1-D arrays (training side)."""

def pack_signs(
    x: npt.NDArray[np.float32] | _I8, *, kernel: _Kernel = "auto", threads: int = 0
) -> _U64:
    """[R, K] -> uint64 [R, ceil(K/64)]."""

def unpack_signs(packed: _U64, k: int, *, kernel: _Kernel = "auto", threads: int = 0) -> _I8:
    """uint64 [R, W] -> int8 [R, k] of +1/-1."""

def pack_bitplanes(x: _U8, *, kernel: _Kernel = "auto", threads: int = 0) -> _U64:
    """uint8 [R, K] -> uint64 [R, 8, ceil(K/64)], plane n = bit n (n = 0 the LSB)."""

class BinaryWeights:
    """Hidden-layer weights prepared once: packed +1/-1 rows w [n, W] of k bits (referenced, not
    copied) and their panel layout for the batch-1 path of bgemm / bgemm_threshold."""

    def __init__(self, w: _U64, k: int) -> None: ...
    @property
    def n(self) -> int: ...
    @property
    def k(self) -> int: ...
    @property
    def nbytes(self) -> int: ...

def bgemm(
    a: _U64, w: _U64 | BinaryWeights, k: int, *, kernel: _Kernel = "auto", threads: int = 0
) -> _I32:
    """a [M, W], w [N, W] -> int32 [M, N] = k - 2 * popcount(a[m] ^ w[n])."""

def bgemm_threshold(
    a: _U64,
    w: _U64 | BinaryWeights,
    k: int,
    lo: _I32,
    hi: _I32,
    *,
    kernel: _Kernel = "auto",
    threads: int = 0,
) -> _U64:
    """-> uint64 [M, ceil(N/64)]: bit n = 0 (+1) iff lo[n] <= bgemm value <= hi[n]."""

def bitplane_gemm(x: _U8, w: _U64, k: int, *, kernel: _Kernel = "auto", threads: int = 0) -> _I32:
    """x uint8 [M, k], w [N, W] -> int32 [M, N] = sum_i x[m, i] * w[n, i] (w as +1/-1)."""

def bitplane_gemm_threshold(
    x: _U8,
    w: _U64,
    k: int,
    lo: _I32,
    hi: _I32,
    *,
    kernel: _Kernel = "auto",
    threads: int = 0,
) -> _U64:
    """-> uint64 [M, ceil(N/64)]: bit n = 0 (+1) iff lo[n] <= bitplane_gemm value <= hi[n]."""

class U8Weights:
    """First-layer weights prepared once for the byte GEMM: packed +1/-1 rows w [n, W] of k bits."""

    def __init__(self, w: _U64, k: int) -> None: ...
    @property
    def n(self) -> int: ...
    @property
    def k(self) -> int: ...
    @property
    def nbytes(self) -> int: ...

def u8gemm(x: _U8, w: U8Weights, *, kernel: _Kernel = "auto", threads: int = 0) -> _I32:
    """x uint8 [M, k] -> int32 [M, n] = sum_i x[m, i] * w[j, i] (equals bitplane_gemm)."""

def u8gemm_threshold(
    x: _U8, w: U8Weights, lo: _I32, hi: _I32, *, kernel: _Kernel = "auto", threads: int = 0
) -> _U64:
    """-> uint64 [M, ceil(n/64)]: bit j = 0 (+1) iff lo[j] <= u8gemm value <= hi[j]."""

def u8conv2d(
    x: _U8,
    w: U8Weights,
    kh: int,
    kw: int,
    stride: _Pair,
    padding: _Pair,
    pad_value: int,
    *,
    kernel: _Kernel = "auto",
    threads: int = 0,
) -> _I32:
    """uint8 NHWC [B, H, W, C] -> int32 [B, Ho, Wo, n] = im2col_u8(...) @ w.T (w.k = kh*kw*C)."""

def u8conv2d_threshold(
    x: _U8,
    w: U8Weights,
    kh: int,
    kw: int,
    stride: _Pair,
    padding: _Pair,
    pad_value: int,
    lo: _I32,
    hi: _I32,
    *,
    kernel: _Kernel = "auto",
    threads: int = 0,
) -> _U64:
    """-> uint64 [B, Ho, Wo, ceil(n/64)] thresholded bits."""

def threshold_bits(
    y: _I32, lo: _I32, hi: _I32, *, kernel: _Kernel = "auto", threads: int = 0
) -> _U64:
    """int32 [M, N] -> uint64 [M, ceil(N/64)]: bit n = 0 (+1) iff lo[n] <= y[m, n] <= hi[n]."""

def im2col_u8(
    x: _U8,
    kh: int,
    kw: int,
    stride: _Pair,
    padding: _Pair,
    pad_value: int,
    *,
    kernel: _Kernel = "auto",
    threads: int = 0,
) -> _U8:
    """uint8 NHWC [B, H, W, C] -> [B, Ho, Wo, kh*kw*C], patches in (kh, kw, C) order."""

def bconv2d(
    x: _U64,
    w: _U64,
    c: int,
    stride: _Pair,
    padding: _Pair,
    *,
    kernel: _Kernel = "auto",
    threads: int = 0,
) -> _I32:
    """x [B, H, W, Cw], w [O, kh, kw, Cw] -> int32 [B, Ho, Wo, O] (torch conv2d, zero padding)."""

def bconv2d_threshold(
    x: _U64,
    w: _U64,
    c: int,
    stride: _Pair,
    padding: _Pair,
    lo: _I32,
    hi: _I32,
    *,
    kernel: _Kernel = "auto",
    threads: int = 0,
) -> _U64:
    """-> uint64 [B, Ho, Wo, ceil(O/64)] thresholded bits."""

def maxpool2d_int32(
    x: _I32, k: int, stride: int, *, kernel: _Kernel = "auto", threads: int = 0
) -> _I32:
    """int32 NHWC max pooling, no padding, floor mode."""

def maxpool2d_bits(
    x: _U64, k: int, stride: int, and_mask: _U64, *, kernel: _Kernel = "auto", threads: int = 0
) -> _U64:
    """Pooling of thresholded bits: AND where and_mask bit is 1, OR where it is 0."""

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def available_kernels() -> list[str]: ...
def default_kernel() -> str: ...
