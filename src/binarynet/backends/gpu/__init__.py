"""Binary GEMM on the GPU: Triton kernels for the XNOR-popcount product and its threshold.
Imports torch and triton only when a kernel runs (their tensors); never training or export.

Also the packing and the unoptimised float kernel the paper compares against.

Importing this package needs neither torch nor triton (both are imported on first use; a
missing one raises :class:`GpuUnavailableError` naming the package — install the ``gpu`` extra).
CUDA tensors run the compiled kernels; CPU tensors run them under Triton's interpreter.
:class:`GpuKernels` offers the dense operations of ``binarynet.backends.engine``'s backend on NumPy
arrays, running on the GPU. See docs/gpu.md.
"""

from binarynet.backends.gpu.bgemm import (
    GpuUnavailableError,
    as_words,
    bgemm,
    bgemm_threshold,
    bitplane_gemm,
    kernels,
    naive_float_gemm,
    pack_bitplanes_gpu,
    pack_signs_gpu,
    threshold_bits_gpu,
    to_uint64,
    triton_available,
    words_for,
)
from binarynet.backends.gpu.dense import GpuKernels, gpu_available

__all__ = [
    "GpuKernels",
    "GpuUnavailableError",
    "as_words",
    "bgemm",
    "bgemm_threshold",
    "bitplane_gemm",
    "gpu_available",
    "kernels",
    "naive_float_gemm",
    "pack_bitplanes_gpu",
    "pack_signs_gpu",
    "threshold_bits_gpu",
    "to_uint64",
    "triton_available",
    "words_for",
]
