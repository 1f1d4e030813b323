"""Compile the Triton kernels for an NVIDIA GPU without one, and report their resources.

Triton compiles ahead of time with the ``ptxas`` bundled in its wheel, so a machine with no GPU
(CI) can check that every kernel of :mod:`binarynet.backends.gpu._triton_kernels` lowers to SASS,
that the popcount is the hardware ``POPC`` instruction, and how many registers each uses and whether
it spills — what the interpreter, which runs on NumPy, cannot tell. Run::

    python -m binarynet.backends.gpu.compile_check            # sm_90 (H100), the default launch
    sizes python -m binarynet.backends.gpu.compile_check --arch 80  # A100

It must run in a process without ``TRITON_INTERPRET`` (the kernels are defined compiled). It
uses Triton's compiler entry points (``triton.compile``, ``ASTSource``, ``GPUTarget``), which
are not a stable API: a Triton that moved them makes :func:`compile_all` raise ImportError.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

# The module, not the function binarynet.backends.gpu.bgemm that shadows it as a package attribute.
_g = importlib.import_module("binarynet.backends.gpu.bgemm")

__all__ = ["compile_all"]

_I32 = "*i32"


def _cases(block_m: int, block_n: int, unroll: int) -> list[tuple[str, str, dict, dict]]:
    """(label, kernel name, pointer types, constexprs) of every kernel variant."""
    tile = {"BLOCK_M": block_m, "BLOCK_N": block_n, "UNROLL": unroll}
    gemm_ptrs = {"a_ptr": _I32, "w_ptr": _I32, "out_ptr": _I32, "lo_ptr": _I32, "hi_ptr": _I32}
    pack = {"BLOCK_R": _g.PACK_BLOCK_R, "BLOCK_W": _g.PACK_BLOCK_W}
    return [
        ("bgemm", "bgemm_kernel", gemm_ptrs,
         {"THRESHOLD": False, **tile, "POPC_LIBDEVICE": True}),
        ("bgemm_threshold", "bgemm_kernel", gemm_ptrs,
         {"THRESHOLD": True, **tile, "POPC_LIBDEVICE": True}),
        ("bgemm (SWAR popcount)", "bgemm_kernel", gemm_ptrs,
         {"THRESHOLD": False, **tile, "POPC_LIBDEVICE": False}),
        ("bitplane_gemm", "bitplane_gemm_kernel", {"x_ptr": _I32, "w_ptr": _I32, "out_ptr": _I32},
         {**tile, "POPC_LIBDEVICE": True}),
        ("pack_signs (fp32)", "pack_signs_kernel", {"x_ptr": "*fp32", "out_ptr": _I32}, pack),
        ("pack_signs (fp16)", "pack_signs_kernel", {"x_ptr": "*fp16", "out_ptr": _I32}, pack),
        ("pack_bitplanes", "pack_bitplanes_kernel", {"x_ptr": "*u8", "out_ptr": _I32}, pack),
        ("naive_float_gemm", "naive_float_gemm_kernel",
         {"a_ptr": "*fp32", "b_ptr": "*fp32", "c_ptr": "*fp32"}, tile),
    ]  # fmt: skip


def _default_warps(kernel_name: str) -> int:
    if kernel_name == "bitplane_gemm_kernel":
        return _g.BITPLANE_NUM_WARPS
    return _g.NUM_WARPS


def _resources(cuobjdump: Path, cubin: bytes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "k.cubin"
        path.write_bytes(cubin)
        usage = subprocess.run(
            [str(cuobjdump), "-res-usage", str(path)], capture_output=True, text=True, check=True
        ).stdout
        sass = subprocess.run(
            [str(cuobjdump), "-sass", str(path)], capture_output=True, text=True, check=True
        ).stdout
    out: dict[str, Any] = {}
    for word in usage.split():
        for key in ("REG", "STACK", "LOCAL"):
            if word.startswith(key + ":"):
                out[key.lower()] = int(word.split(":")[1].rstrip(","))
    out["popc_instructions"] = sass.count("POPC")
    return out


def compile_all(
    arch: int = 90,
    *,
    block_m: int = _g.BLOCK_M,
    block_n: int = _g.BLOCK_N,
    unroll: int = _g.UNROLL,
    num_warps: int | None = None,
) -> list[dict[str, Any]]:
    """Compile every kernel for ``sm_<arch>`` (``num_warps=None``: each kernel's default, as
    :mod:`binarynet.backends.gpu.bgemm` launches it); one dict per kernel: name, registers, stack
    bytes (spills), number of POPC instructions in the SASS (when cuobjdump is bundled)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    mod = _g.kernels(interpret=False)
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    rows = []
    for label, kernel_name, ptrs, consts in _cases(block_m, block_n, unroll):
        fn = getattr(mod, kernel_name)
        signature = {n: ("constexpr" if n in consts else ptrs.get(n, "i32")) for n in fn.arg_names}
        compiled = triton.compile(
            ASTSource(fn, signature, consts),
            target=GPUTarget("cuda", arch, 32),
            options={"num_warps": num_warps or _default_warps(kernel_name)},
        )
        row: dict[str, Any] = {
            "kernel": label,
            "arch": f"sm_{arch}",
            "num_warps": num_warps or _default_warps(kernel_name),
        }
        if cuobjdump.is_file() and "cubin" in compiled.asm:
            row.update(_resources(cuobjdump, compiled.asm["cubin"]))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arch", type=int, default=90, help="compute capability ×10 (default 90)")
    p.add_argument("--block-m", type=int, default=_g.BLOCK_M)
    p.add_argument("--block-n", type=int, default=_g.BLOCK_N)
    p.add_argument("--unroll", type=int, default=_g.UNROLL)
    p.add_argument("--num-warps", type=int, default=None, help="default: as launched")
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        p.error("unset TRITON_INTERPRET: the kernels must be defined compiled")
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silence Triton 3.9's warning
    rows = compile_all(
        args.arch,
        block_m=args.block_m,
        block_n=args.block_n,
        unroll=args.unroll,
        num_warps=args.num_warps,
    )
    print(f"{'kernel':24} {'arch':6} {'warps':>5} {'regs':>5} {'stack':>6} {'POPC':>5}")
    for r in rows:
        print(
            f"{r['kernel']:24} {r['arch']:6} {r['num_warps']:>5} {r.get('reg', '?'):>5} "
            f"{r.get('stack', '?'):>6} {r.get('popc_instructions', '?'):>5}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
