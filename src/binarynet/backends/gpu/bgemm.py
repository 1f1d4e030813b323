"""Binary GEMM on the GPU (Triton), with the fused threshold output, and packing on the device.

Importing this module needs neither torch nor triton; the first call imports both (the Triton
kernels live in :mod:`binarynet.backends.gpu._triton_kernels`) and a missing package raises
:class:`GpuUnavailableError` naming it (``pip install "binarynet[gpu]"`` / ``pip install
triton``).

Layout (the project's convention, in 32-bit words): bit 1 = −1, bit 0 = +1, sign(0) = +1; a
row of K ±1 values is 2·ceil(K/64) int32 words, element k in bit k % 32 of word k // 32,
padding bits zero — exactly the little-endian halves of the engine's uint64 words, so
``np_uint64_array.view(np.int32)`` is an operand and ``out.view(torch.int64)`` of a packed
output is the engine's uint64 layout (:func:`as_words`, :func:`to_uint64` convert). Every packed
output here has an even number of int32 words per row, padding bits zero.

Where the kernels run follows the tensors: CUDA (or ROCm) tensors run the compiled kernels; CPU
tensors run them under Triton's CPU interpreter (``TRITON_INTERPRET=1``, NumPy — slow, for tests
and for machines without a GPU). Triton fixes the mode per process (``TRITON_INTERPRET`` is read
when kernels are defined and again when Triton first launches one), so the first call decides:
:func:`kernels` explains.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "GpuUnavailableError",
    "as_words",
    "bgemm",
    "bgemm_threshold",
    "bitplane_gemm",
    "kernels",
    "naive_float_gemm",
    "pack_bitplanes_gpu",
    "pack_signs_gpu",
    "threshold_bits_gpu",
    "to_uint64",
    "triton_available",
    "words_for",
]

_KERNELS_MODULE = "binarynet.backends.gpu._triton_kernels"

# Launch configuration: 64 × 64 int32 accumulators per program over 4 warps (32 per thread), the
# loop over words not unrolled. Chosen from the compiled code for sm_90 (ptxas, no GPU): no
# spills, 167–214 registers (more unrolling spills); not timed on a GPU yet — the benchmark
# tries a few (docs/gpu.md). The interpreter runs a tile as one NumPy operation, and the same
# sizes suit it.
BLOCK_M = 64
BLOCK_N = 64
UNROLL = 1
PACK_BLOCK_R = 16
PACK_BLOCK_W = 8
NUM_WARPS = 4
BITPLANE_NUM_WARPS = 8  # 4 would use 255 registers (and spill on sm_80)


class GpuUnavailableError(RuntimeError):
    """torch or triton is missing (or the kernels cannot run on the tensors given)."""


def triton_available() -> bool:
    """Whether ``torch`` and ``triton`` import (says nothing about a GPU)."""
    try:
        import torch  # noqa: F401
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def words_for(k: int) -> int:
    """int32 words of one packed row of k elements: 2·ceil(k/64) (whole uint64 words)."""
    return 2 * ((k + 63) // 64)


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is in the test environment
        raise GpuUnavailableError(
            "binarynet.backends.gpu needs PyTorch and Triton: pip install 'binarynet[gpu]' "
            "(or pip install torch triton)"
        ) from e
    return torch


def kernels(interpret: bool | None = None) -> ModuleType:
    """The module of Triton kernels, loaded once per process.

    ``interpret=True`` loads them for Triton's CPU interpreter and sets ``TRITON_INTERPRET=1``
    in ``os.environ`` for the rest of the process (Triton reads it again when it imports parts
    of itself at the first launch, and those must agree); ``False`` loads them compiled;
    ``None`` follows ``TRITON_INTERPRET``. The mode cannot change once loaded (Triton's own
    rule); asking for the other raises :class:`GpuUnavailableError`. A missing triton raises it
    too, naming the package."""
    _torch()
    env = os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "yes", "on")
    mod = sys.modules.get(_KERNELS_MODULE)
    if mod is not None:
        if interpret is not None and bool(interpret) != mod.INTERPRET:
            loaded = "for Triton's CPU interpreter" if mod.INTERPRET else "compiled"
            target = "on CPU tensors" if interpret else "on the GPU"
            env_hint = "1" if interpret else "0 / unset"
            raise GpuUnavailableError(
                f"the binarynet.backends.gpu kernels were loaded {loaded} in this process and "
                f"cannot run {target} (start a process with TRITON_INTERPRET={env_hint})"
            )
        return mod
    if interpret is None:
        interpret = env
    if interpret:
        os.environ["TRITON_INTERPRET"] = "1"
    elif env:
        raise GpuUnavailableError(
            "TRITON_INTERPRET is set in this process: the kernels can only run under Triton's "
            "interpreter, on CPU tensors"
        )
    try:
        return importlib.import_module(_KERNELS_MODULE)
    except ImportError as e:
        sys.modules.pop(_KERNELS_MODULE, None)
        if e.name is not None and e.name.split(".")[0] != "triton":
            raise
        raise GpuUnavailableError(
            "binarynet.backends.gpu needs the 'triton' package, which is not installed: "
            "pip install 'binarynet[gpu]' (or pip install triton)"
        ) from e


def _kernels_for(t: torch.Tensor) -> tuple[ModuleType, bool]:
    """(kernel module, use the libdevice popcount) for tensors on t's device: CPU tensors run
    under the interpreter (SWAR popcount), others compiled (libdevice unless
    ``BINARYNET_GPU_POPC=swar``)."""
    mod = kernels(interpret=t.device.type == "cpu")
    if mod.INTERPRET:
        return mod, False
    swar = os.environ.get("BINARYNET_GPU_POPC", "").lower() == "swar"
    return mod, not swar


def _grid(*sizes: int) -> tuple[int, ...]:
    return tuple(max(1, s) for s in sizes)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


# --------------------------------------------------------------------------------------------
# Conversions


def as_words(x: Any, device: Any = None) -> torch.Tensor:
    """Packed words as an int32 tensor (last axis in int32 words).

    Accepts a torch tensor of int32/uint32 (as is) or int64/uint64 (viewed as int32, doubling
    the last axis), or a NumPy array of those dtypes (the engine's uint64 words); ``device``
    moves it (None: keep a tensor where it is; NumPy goes to CUDA when available, else CPU)."""
    torch = _torch()
    if isinstance(x, np.ndarray):
        if x.dtype not in (np.uint64, np.int64, np.uint32, np.int32):
            raise TypeError(f"packed words must be 32- or 64-bit integers, got {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(x).view(np.int32))
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
    elif isinstance(x, torch.Tensor):
        t = x
        if t.dtype in (torch.int64, torch.uint64):
            t = t.contiguous().view(torch.int32)
        elif t.dtype == torch.uint32:
            t = t.view(torch.int32)
        elif t.dtype != torch.int32:
            raise TypeError(f"packed words must be 32- or 64-bit integers, got {t.dtype}")
    else:
        raise TypeError(f"expected a torch tensor or NumPy array, got {type(x).__name__}")
    return t if device is None else t.to(device)


def to_uint64(t: torch.Tensor) -> np.ndarray:
    """int32 packed words (even last axis) → the engine's uint64 NumPy layout."""
    torch = _torch()
    if t.dtype != torch.int32 or t.shape[-1] % 2:
        raise ValueError("expected int32 words with an even last axis")
    return t.detach().cpu().contiguous().view(torch.int64).numpy().view(np.uint64)


def _check_words(name: str, t: torch.Tensor, k: int) -> None:
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D [rows, words], got shape {tuple(t.shape)}")
    if t.shape[1] * 32 < k:
        raise ValueError(f"{name} has {t.shape[1]} int32 words per row, fewer than k={k} bits")


def _as_int32_vector(v: Any, n: int, device: Any, name: str) -> torch.Tensor:
    torch = _torch()
    t = torch.as_tensor(v).to(device=device)
    if t.numel() == 0:
        t = t.to(torch.int32)
    if t.dtype != torch.int32:
        if t.is_floating_point() or t.dtype == torch.bool:
            raise TypeError(f"{name} must be integers (int32), got {t.dtype}")
        t = t.to(torch.int32)
    t = t.reshape(-1).contiguous()
    if t.numel() != n:
        raise ValueError(f"{name} must have {n} entries (one per output column), got {t.numel()}")
    return t


# --------------------------------------------------------------------------------------------
# Binary GEMM


def _bgemm(a, w, k, lo, hi, block_m, block_n, unroll, num_warps):
    torch = _torch()
    a = as_words(a)
    w = as_words(w, device=a.device)
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    _check_words("a", a, k)
    _check_words("w", w, k)
    if a.shape[1] != w.shape[1]:
        raise ValueError(f"a and w have {a.shape[1]} and {w.shape[1]} words per row")
    M, KW = a.shape
    N = w.shape[0]
    threshold = lo is not None
    if threshold and block_n % 64:
        raise ValueError("block_n must be a multiple of 64 for the threshold output")
    mod, popc = _kernels_for(a)
    if threshold:
        OW = words_for(N)
        out = torch.empty((M, OW), dtype=torch.int32, device=a.device)
        lo = _as_int32_vector(lo, N, a.device, "lo")
        hi = _as_int32_vector(hi, N, a.device, "hi")
    else:
        OW = 0
        out = torch.empty((M, N), dtype=torch.int32, device=a.device)
        lo = hi = out  # unused
    if M == 0 or (N == 0 and not threshold) or out.numel() == 0:
        return out
    grid = _grid(_cdiv(M, block_m), _cdiv(N, block_n))
    extra = {} if mod.INTERPRET else {"num_warps": num_warps}
    mod.bgemm_kernel[grid](
        a, w, out, lo, hi, M, N, KW, k, OW,
        a.stride(0), a.stride(1), w.stride(0), w.stride(1), out.stride(0), out.stride(1),
        THRESHOLD=threshold, BLOCK_M=block_m, BLOCK_N=block_n, UNROLL=unroll,
        POPC_LIBDEVICE=popc, **extra,
    )  # fmt: skip
    return out


def bgemm(
    a: Any,
    w: Any,
    k: int,
    *,
    block_m: int = BLOCK_M,
    block_n: int = BLOCK_N,
    unroll: int = UNROLL,
    num_warps: int = NUM_WARPS,
) -> torch.Tensor:
    """int32 [M, N] = k − 2·popcount(a[m] ⊕ w[n]): the dot products of ±1 rows.

    a [M, W], w [N, W]: packed words (see :func:`as_words`; any strides), W ≥ ceil(k/32), bits
    past k zero in both. Runs where ``a`` is (w is moved there)."""
    return _bgemm(a, w, k, None, None, block_m, block_n, unroll, num_warps)


def bgemm_threshold(
    a: Any,
    w: Any,
    k: int,
    lo: Any,
    hi: Any,
    *,
    block_m: int = BLOCK_M,
    block_n: int = BLOCK_N,
    unroll: int = UNROLL,
    num_warps: int = NUM_WARPS,
) -> torch.Tensor:
    """Packed int32 [M, 2·ceil(N/64)]: bit n = 0 (+1) iff lo[n] ≤ x[m, n] ≤ hi[n] for
    x = bgemm(a, w, k), else 1; padding bits 0. The int32 products never leave registers:
    the output is the next layer's packed input (``to_uint64`` gives the engine's layout)."""
    return _bgemm(a, w, k, lo, hi, block_m, block_n, unroll, num_warps)


def bitplane_gemm(
    x: Any,
    w: Any,
    k: int,
    *,
    block_m: int = BLOCK_M,
    block_n: int = BLOCK_N,
    unroll: int = UNROLL,
    num_warps: int = BITPLANE_NUM_WARPS,
) -> torch.Tensor:
    """int32 [M, N] = Σᵢ x[m, i]·w[n, i] with w as ±1: the first layer on 8-bit input
    (the paper's Algorithm 5, as ``binarynet._kernels.bitplane_gemm``).

    x is uint8 [M, k] (packed into bit planes on the device first) or already packed int32
    planes [M, 8, W] from :func:`pack_bitplanes_gpu`; w [N, W] packed words."""
    torch = _torch()
    if not isinstance(x, torch.Tensor):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if x.dtype == torch.uint8:
        if x.dim() != 2 or x.shape[1] != k:
            raise ValueError(f"uint8 x must be [M, k={k}], got shape {tuple(x.shape)}")
        x = pack_bitplanes_gpu(x)
    if x.dtype != torch.int32 or x.dim() != 3 or x.shape[1] != 8:
        raise ValueError("x must be uint8 [M, k] or int32 bit planes [M, 8, W]")
    w = as_words(w, device=x.device)
    _check_words("w", w, k)
    if x.shape[2] != w.shape[1]:
        raise ValueError(f"x planes and w have {x.shape[2]} and {w.shape[1]} words per row")
    M, N, KW = x.shape[0], w.shape[0], w.shape[1]
    out = torch.empty((M, N), dtype=torch.int32, device=x.device)
    if out.numel() == 0:
        return out
    mod, popc = _kernels_for(x)
    extra = {} if mod.INTERPRET else {"num_warps": num_warps}
    mod.bitplane_gemm_kernel[_grid(_cdiv(M, block_m), _cdiv(N, block_n))](
        x, w, out, M, N, KW, x.stride(0), x.stride(1), x.stride(2), w.stride(0), w.stride(1),
        out.stride(0), out.stride(1), BLOCK_M=block_m, BLOCK_N=block_n, UNROLL=unroll,
        POPC_LIBDEVICE=popc, **extra,
    )  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------
# Packing on the device


def pack_signs_gpu(x: torch.Tensor) -> torch.Tensor:
    """[R, K] (any real or integer dtype) → packed int32 [R, 2·ceil(K/64)] on x's device:
    bit 1 where x < 0 (0, −0.0 and NaN give +1), as ``binarynet._kernels.pack_signs``."""
    torch = _torch()
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D [rows, K], got shape {tuple(x.shape)}")
    if x.dtype == torch.bool:
        raise TypeError("x must be numeric (bool has no sign)")
    R, K = x.shape
    OW = words_for(K)
    out = torch.empty((R, OW), dtype=torch.int32, device=x.device)
    if out.numel() == 0:
        return out
    mod, _ = _kernels_for(x)
    mod.pack_signs_kernel[_grid(_cdiv(R, PACK_BLOCK_R), _cdiv(OW, PACK_BLOCK_W))](
        x, out, R, K, OW, x.stride(0), x.stride(1), out.stride(0),
        BLOCK_R=PACK_BLOCK_R, BLOCK_W=PACK_BLOCK_W,
    )  # fmt: skip
    return out


def pack_bitplanes_gpu(x: torch.Tensor) -> torch.Tensor:
    """uint8 [R, K] → int32 [R, 8, 2·ceil(K/64)]: plane p holds bit p of every element (p = 0
    the LSB), as ``binarynet._kernels.pack_bitplanes`` (``to_uint64`` gives its layout)."""
    torch = _torch()
    if x.dim() != 2 or x.dtype != torch.uint8:
        raise ValueError(f"x must be uint8 [R, K], got {x.dtype} {tuple(x.shape)}")
    R, K = x.shape
    OW = words_for(K)
    out = torch.empty((R, 8, OW), dtype=torch.int32, device=x.device)
    if out.numel() == 0:
        return out
    mod, _ = _kernels_for(x)
    mod.pack_bitplanes_kernel[_grid(_cdiv(R, PACK_BLOCK_R), _cdiv(OW, PACK_BLOCK_W))](
        x, out, R, K, OW, x.stride(0), x.stride(1), out.stride(0), out.stride(1),
        BLOCK_R=PACK_BLOCK_R, BLOCK_W=PACK_BLOCK_W,
    )  # fmt: skip
    return out


def threshold_bits_gpu(y: torch.Tensor, lo: Any, hi: Any) -> torch.Tensor:
    """int32 [M, N] → packed [M, 2·ceil(N/64)]: +1 (bit 0) iff lo[n] ≤ y ≤ hi[n] — the
    threshold of the first layer's integers (``binarynet.backends.engine`` ``threshold_bits``)."""
    torch = _torch()
    if y.dim() != 2:
        raise ValueError(f"y must be 2-D [M, N], got shape {tuple(y.shape)}")
    lo = _as_int32_vector(lo, y.shape[1], y.device, "lo")
    hi = _as_int32_vector(hi, y.shape[1], y.device, "hi")
    signs = torch.where((y >= lo) & (y <= hi), 1, -1).to(torch.int8)
    return pack_signs_gpu(signs)


# --------------------------------------------------------------------------------------------
# Baseline


def naive_float_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    block_m: int = BLOCK_M,
    block_n: int = BLOCK_N,
    unroll: int = UNROLL,
    num_warps: int = NUM_WARPS,
) -> torch.Tensor:
    """float32 a [M, K] @ b [K, N] by the unoptimised kernel (float multiply-adds in the loop
    of :func:`bgemm`; no tensor cores, no shared memory): the paper's baseline."""
    torch = _torch()
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} do not multiply")
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), dtype=torch.float32, device=a.device)
    if c.numel() == 0:
        return c
    mod, _ = _kernels_for(a)
    extra = {} if mod.INTERPRET else {"num_warps": num_warps}
    mod.naive_float_gemm_kernel[_grid(_cdiv(M, block_m), _cdiv(N, block_n))](
        a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
        c.stride(0), c.stride(1), BLOCK_M=block_m, BLOCK_N=block_n, UNROLL=unroll, **extra,
    )  # fmt: skip
    return c
