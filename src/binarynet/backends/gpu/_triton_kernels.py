"""The Triton kernels behind :mod:`binarynet.backends.gpu.bgemm` (imported only on first use).

This module imports ``triton`` at its top, so it is never imported by ``import
binarynet.backends.gpu``;
:func:`binarynet.backends.gpu.bgemm.kernels` imports it (with ``TRITON_INTERPRET`` set as asked) and
turns a missing ``triton`` into a clear error. Whether the kernels run compiled on a GPU or
under Triton's CPU interpreter is fixed when this module is executed (``triton.jit`` reads
``TRITON_INTERPRET`` at decoration time): :data:`INTERPRET` records which.

Words are int32: element k of a row in bit k % 32 of word k // 32 — the little-endian halves of
the engine's uint64 words, so ``uint64_array.view(np.int32)`` is a valid operand. Bit 1 = −1,
bit 0 = +1, padding bits zero in both operands, dot(a, w) = K − 2·popcount(a ⊕ w).

Popcount: ``POPC_LIBDEVICE`` (a ``tl.constexpr``) picks the hardware instruction through
libdevice (``__nv_popc`` on NVIDIA, ``__ockl_popcount_u32`` on AMD) on a GPU, and the SWAR bit
trick (the method the paper's XNOR kernel uses) on uint32 with logical shifts under the
interpreter, which cannot call libdevice (``create_extern_elementwise`` is not implemented
there). :func:`binarynet.backends.gpu.bgemm._kernels_for` makes the choice from :data:`INTERPRET`;
``BINARYNET_GPU_POPC=swar`` forces SWAR on a GPU too. (Compiled for sm_80/sm_90, LLVM recognises
the SWAR sequence and emits the same POPC instruction, so both variants give the same SASS
there: ``python -m binarynet.backends.gpu.compile_check``.)
"""

from __future__ import annotations

import os

import triton
import triton.language as tl
from triton.language.extra import libdevice

# INTERPRET: True when these kernels were defined under TRITON_INTERPRET=1 (they then run on CPU
# tensors, NumPy underneath); False when they compile for the GPU.
try:
    from triton import knobs

    INTERPRET: bool = bool(knobs.runtime.interpret)
except ImportError:  # Triton before 3.4 read the variable directly
    INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


# --------------------------------------------------------------------------------------------
# Helpers


@triton.jit
def _popcount(x, POPC_LIBDEVICE: tl.constexpr):
    """Bits set in each int32 of x, as int32."""
    if POPC_LIBDEVICE:
        return libdevice.popc(x)
    else:
        u = x.to(tl.uint32, bitcast=True)
        u = u - ((u >> 1) & 0x55555555)
        u = (u & 0x33333333) + ((u >> 2) & 0x33333333)
        u = (u + (u >> 4)) & 0x0F0F0F0F
        u = u + (u >> 8)
        u = u + (u >> 16)
        return (u & 0x3F).to(tl.int32, bitcast=True)


@triton.jit
def _pack32(bits, ROWS: tl.constexpr, COLS: tl.constexpr):
    """int32 [ROWS, COLS] of 0/1 → int32 [ROWS, COLS // 32]: column c in bit c % 32 of word
    c // 32. A sum of the shifted bits, which equals their OR (the bits are distinct, and no
    partial sum leaves the int32 range, bit 31 included); ``tl.sum`` rather than ``tl.reduce``
    with an OR because the interpreter runs a custom combine function element by element."""
    lane = tl.arange(0, COLS) % 32
    shifted = bits << lane[None, :]
    return tl.sum(tl.reshape(shifted, (ROWS, COLS // 32, 32)), axis=2)


# --------------------------------------------------------------------------------------------
# Binary GEMM (+ fused threshold)


@triton.jit
def bgemm_kernel(
    a_ptr,  # int32 [M, KW] (strides sam, sak)
    w_ptr,  # int32 [N, KW] (strides swn, swk)
    out_ptr,  # int32 [M, N], or int32 [M, OW] packed bits when THRESHOLD
    lo_ptr,  # int32 [N] (THRESHOLD only)
    hi_ptr,
    M,
    N,
    KW,  # words per row (≥ ceil(K / 32); extra words must be zero)
    K,  # real elements per row
    OW,  # output words per row (THRESHOLD only)
    sam,
    sak,
    swn,
    swk,
    som,
    son,
    THRESHOLD: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    UNROLL: tl.constexpr,
    POPC_LIBDEVICE: tl.constexpr,
):
    """One BLOCK_M × BLOCK_N tile of K − 2·popcount(a ⊕ w).

    Each loop step is a rank-1 update: word kw of the BLOCK_M rows of a against word kw of the
    BLOCK_N rows of w — XOR, popcount, accumulate in int32 registers; the loop is unrolled
    UNROLL times (consecutive words share cache lines, so most loads come from L1).
    Out-of-range rows load 0 and are not stored.
    """
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < M
    mask_n = offs_n < N
    a_rows = a_ptr + offs_m.to(tl.int64) * sam
    w_rows = w_ptr + offs_n.to(tl.int64) * swn

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    for kw in tl.range(0, KW, loop_unroll_factor=UNROLL):
        a = tl.load(a_rows + kw * sak, mask=mask_m, other=0)
        w = tl.load(w_rows + kw * swk, mask=mask_n, other=0)
        acc += _popcount(a[:, None] ^ w[None, :], POPC_LIBDEVICE)
    x = K - 2 * acc

    if THRESHOLD:
        lo = tl.load(lo_ptr + offs_n, mask=mask_n, other=0)
        hi = tl.load(hi_ptr + offs_n, mask=mask_n, other=0)
        outside = (x < lo[None, :]) | (x > hi[None, :])
        bits = (outside & mask_n[None, :]).to(tl.int32)  # padding columns → bit 0
        words = _pack32(bits, BLOCK_M, BLOCK_N)
        offs_w = pid_n * (BLOCK_N // 32) + tl.arange(0, BLOCK_N // 32)
        ptrs = out_ptr + offs_m.to(tl.int64)[:, None] * som + offs_w[None, :] * son
        tl.store(ptrs, words, mask=mask_m[:, None] & (offs_w < OW)[None, :])
    else:
        ptrs = out_ptr + offs_m.to(tl.int64)[:, None] * som + offs_n[None, :] * son
        tl.store(ptrs, x, mask=mask_m[:, None] & mask_n[None, :])


# --------------------------------------------------------------------------------------------
# First layer: 8-bit input on bit planes (the paper's Algorithm 5)


@triton.jit
def bitplane_gemm_kernel(
    x_ptr,  # int32 [M, 8, KW]: bit planes of uint8 input, plane p = bit p (strides sxm, sxp, sxk)
    w_ptr,  # int32 [N, KW]
    out_ptr,  # int32 [M, N]
    M,
    N,
    KW,
    sxm,
    sxp,
    sxk,
    swn,
    swk,
    som,
    son,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    UNROLL: tl.constexpr,
    POPC_LIBDEVICE: tl.constexpr,
):
    """Σᵢ xᵢ·wᵢ with w = ±1: Σᵢ xᵢ − 2·Σ_{wᵢ=−1} xᵢ = Σₚ 2ᵖ (popcount(bₚ) − 2·popcount(bₚ ∧ c))
    for the planes bₚ of x and the weight bits c."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < M
    mask_n = offs_n < N
    x_rows = x_ptr + offs_m.to(tl.int64) * sxm
    w_rows = w_ptr + offs_n.to(tl.int64) * swn

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)  # Σ_{w=−1} x
    xsum = tl.zeros((BLOCK_M,), dtype=tl.int32)  # Σ x
    for p in tl.range(0, 8, loop_unroll_factor=1):  # not unrolled: 8 × a tile would spill
        for kw in tl.range(0, KW, loop_unroll_factor=UNROLL):
            w = tl.load(w_rows + kw * swk, mask=mask_n, other=0)
            b = tl.load(x_rows + p * sxp + kw * sxk, mask=mask_m, other=0)
            acc += _popcount(b[:, None] & w[None, :], POPC_LIBDEVICE) << p
            xsum += _popcount(b, POPC_LIBDEVICE) << p
    y = xsum[:, None] - 2 * acc
    ptrs = out_ptr + offs_m.to(tl.int64)[:, None] * som + offs_n[None, :] * son
    tl.store(ptrs, y, mask=mask_m[:, None] & mask_n[None, :])


# --------------------------------------------------------------------------------------------
# Packing on the device


@triton.jit
def pack_signs_kernel(
    x_ptr,  # [R, K] any real or integer dtype (strides sxr, sxk)
    out_ptr,  # int32 [R, OW]
    R,
    K,
    OW,
    sxr,
    sxk,
    sor,
    BLOCK_R: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """BLOCK_R rows × BLOCK_W words: bit 1 where x < 0 (so 0, −0.0 and NaN give +1, as the C++
    pack_signs); elements past K (padding) give 0."""
    offs_r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    offs_w = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)
    k = tl.program_id(1) * (BLOCK_W * 32) + tl.arange(0, BLOCK_W * 32)
    mask_r = offs_r < R
    ptrs = x_ptr + offs_r.to(tl.int64)[:, None] * sxr + k[None, :] * sxk
    v = tl.load(ptrs, mask=mask_r[:, None] & (k < K)[None, :], other=0)
    words = _pack32((v < 0).to(tl.int32), BLOCK_R, BLOCK_W * 32)
    optrs = out_ptr + offs_r.to(tl.int64)[:, None] * sor + offs_w[None, :]
    tl.store(optrs, words, mask=mask_r[:, None] & (offs_w < OW)[None, :])


@triton.jit
def pack_bitplanes_kernel(
    x_ptr,  # uint8 [R, K] (strides sxr, sxk)
    out_ptr,  # int32 [R, 8, OW] (strides sor, sop; words contiguous)
    R,
    K,
    OW,
    sxr,
    sxk,
    sor,
    sop,
    BLOCK_R: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """Plane p, word j: bit i = bit p of x[32·j + i] (zero past K)."""
    offs_r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    offs_w = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)
    k = tl.program_id(1) * (BLOCK_W * 32) + tl.arange(0, BLOCK_W * 32)
    mask_r = offs_r < R
    ptrs = x_ptr + offs_r.to(tl.int64)[:, None] * sxr + k[None, :] * sxk
    v = tl.load(ptrs, mask=mask_r[:, None] & (k < K)[None, :], other=0).to(tl.int32)
    optrs = out_ptr + offs_r.to(tl.int64)[:, None] * sor + offs_w[None, :]
    omask = mask_r[:, None] & (offs_w < OW)[None, :]
    for p in tl.static_range(8):
        tl.store(optrs + p * sop, _pack32((v >> p) & 1, BLOCK_R, BLOCK_W * 32), mask=omask)


# --------------------------------------------------------------------------------------------
# The paper's baseline: an unoptimised float GEMM


@triton.jit
def naive_float_gemm_kernel(
    a_ptr,  # float [M, K]
    b_ptr,  # float [K, N]
    c_ptr,  # float32 [M, N]
    M,
    N,
    K,
    sam,
    sak,
    sbk,
    sbn,
    scm,
    scn,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    UNROLL: tl.constexpr,
):
    """The same tiling and loop as :func:`bgemm_kernel`, with float32 multiply-adds on the
    CUDA cores in place of XOR + popcount: no ``tl.dot`` (no tensor cores), no shared-memory
    staging, one element per rank-1 update instead of 32 — the "unoptimised kernel" of the
    paper's Section 4, which says its XNOR kernel is the baseline kernel with the SWAR
    popcount swapped in."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < M
    mask_n = offs_n < N
    a_rows = a_ptr + offs_m.to(tl.int64) * sam
    b_cols = b_ptr + offs_n.to(tl.int64) * sbn

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in tl.range(0, K, loop_unroll_factor=UNROLL):
        a = tl.load(a_rows + k * sak, mask=mask_m, other=0.0).to(tl.float32)
        b = tl.load(b_cols + k * sbk, mask=mask_n, other=0.0).to(tl.float32)
        acc += a[:, None] * b[None, :]
    ptrs = c_ptr + offs_m.to(tl.int64)[:, None] * scm + offs_n[None, :] * scn
    tl.store(ptrs, acc, mask=mask_m[:, None] & mask_n[None, :])
