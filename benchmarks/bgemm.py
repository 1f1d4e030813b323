"""Benchmark of the binary GEMM kernels against torch float32 F.linear.

For each shape (M, N, K) — activations a [M, K], weights w [N, K] — each kernel and each thread
count, it times ``binarynet._kernels.bgemm`` on the packed operands and
``torch.nn.functional.linear`` on float32 tensors of the same shape, side by side in the same
run (torch right after each kernel, best of ``--repeats``), and reports the time, the binary MAC
rate (M·N·K / time) and the speed-up over torch. Prints a table and writes JSON (default:
benchmarks/results/bgemm.json).

    python benchmarks/bgemm.py                 # default shapes, kernels and thread counts
    python benchmarks/bgemm.py --quick         # fewer repeats, main shape only
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import time
from pathlib import Path

import binarynet._kernels as K
import numpy as np

SHAPES = {
    # name: (M, N, K)
    "256x4096x4096": (256, 4096, 4096),  # the reference shape (a hidden layer, batch 256)
    "1x4096x4096": (1, 4096, 4096),  # batch 1: memory-bound on w
    "8192x128x1152": (8192, 128, 1152),  # a 3x3x128 -> 128 convolution as im2col GEMM
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def best_time(fn, repeats: int, min_time: float = 0.2) -> float:
    """Best wall time of fn() over `repeats` runs (at least `min_time` seconds of runs)."""
    fn()  # warm-up (page faults, thread start-up, caches)
    best, spent, n = float("inf"), 0.0, 0
    while n < repeats or spent < min_time:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
        if n >= 50 * repeats:
            break
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--kernels", nargs="*", default=None, help="default: all but 'reference'")
    p.add_argument("--threads", nargs="*", type=int, default=None, help="default: 1 and 2")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="main shape, 3 repeats")
    p.add_argument("--no-torch", action="store_true", help="skip the torch float32 baseline")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bgemm.json")
    args = p.parse_args()
    if args.quick:
        args.shapes, args.repeats = ["256x4096x4096"], 3

    kernels = args.kernels or [k for k in K.available_kernels() if k != "reference"]
    threads = args.threads or sorted({1, min(2, os.cpu_count() or 1)})
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("torch not installed: no float32 baseline")

    rng = np.random.default_rng(0)
    rows = []
    header = (
        f"{'shape (MxNxK)':>15} {'kernel':>9} {'thr':>3} {'time ms':>9} {'bin GMAC/s':>11}"
        f" {'torch ms':>9} {'x torch':>8}"
    )
    print(f"CPU: {cpu_model()}; available kernels: {K.available_kernels()}")
    print(header)
    print("-" * len(header))
    for shape in args.shapes:
        M, N, Kdim = SHAPES[shape]
        a = K.pack_signs(np.where(rng.random((M, Kdim)) < 0.5, -1, 1).astype(np.int8))
        w = K.pack_signs(np.where(rng.random((N, Kdim)) < 0.5, -1, 1).astype(np.int8))
        if torch is not None:
            ta, tw = torch.randn(M, Kdim), torch.randn(N, Kdim)
        for t in threads:
            torch_s = None
            for kern in kernels:
                t_s = best_time(
                    lambda a=a, w=w, n=Kdim, k=kern, t=t: K.bgemm(a, w, n, kernel=k, threads=t),
                    args.repeats,
                )
                if torch is not None:
                    # measured right after, in the same conditions
                    torch.set_num_threads(t)
                    with torch.inference_mode():
                        ts = best_time(
                            lambda ta=ta, tw=tw: torch.nn.functional.linear(ta, tw), args.repeats
                        )
                    torch_s = ts if torch_s is None else min(torch_s, ts)
                rows.append(
                    {
                        "shape": shape,
                        "M": M,
                        "N": N,
                        "K": Kdim,
                        "kernel": kern,
                        "threads": t,
                        "time_s": t_s,
                        "binary_gmacs": M * N * Kdim / t_s / 1e9,
                        "torch_f32_time_s": torch_s,
                    }
                )
            for r in rows:
                if r["shape"] == shape and r["threads"] == t:
                    r["torch_f32_time_s"] = torch_s
                    r["speedup_vs_torch_f32"] = torch_s / r["time_s"] if torch_s else None
                    ratio = f"{r['speedup_vs_torch_f32']:8.1f}" if torch_s else f"{'-':>8}"
                    tms = f"{torch_s * 1e3:9.3f}" if torch_s else f"{'-':>9}"
                    print(
                        f"{shape:>15} {r['kernel']:>9} {t:>3} {r['time_s'] * 1e3:9.3f}"
                        f" {r['binary_gmacs']:11.1f} {tms} {ratio}"
                    )
    # scaling of each kernel from 1 to the largest thread count
    if len(threads) > 1:
        for shape in args.shapes:
            for kern in kernels:
                by_t = {
                    r["threads"]: r["time_s"]
                    for r in rows
                    if r["shape"] == shape and r["kernel"] == kern
                }
                speedup = by_t[1] / by_t[threads[-1]]
                print(f"scaling {shape} {kern}: {threads[-1]} threads = {speedup:.2f}x one")

    result = {
        "benchmark": "bgemm",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "available_kernels": K.available_kernels(),
        "torch_version": getattr(torch, "__version__", None),
        "repeats": args.repeats,
        "timing": "best of the repeats; torch measured right after each kernel in the same run",
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
