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

import numpy as np

import binarynet._kernels as K

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


def best_time(fn, repeats: int, clock=time.perf_counter, min_time: float = 0.2) -> float:
    """Best time of fn() by `clock` over `repeats` runs (and at least `min_time` s of runs)."""
    fn()  # warm-up (page faults, thread start-up, caches)
    best, spent, n = float("inf"), 0.0, 0
    while n < repeats or spent < min_time:
        t0 = clock()
        fn()
        dt = clock() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
        if n >= 50 * repeats:
            break
    return best


def measure(fn, repeats: int, threads: int) -> dict:
    """Wall time; with one thread also the CPU time of the calling thread (the kernels and torch
    then run on it), which, unlike wall time, does not count the time the thread waits for a
    core that other processes hold."""
    out = {"wall": best_time(fn, repeats)}
    out["cpu"] = best_time(fn, repeats, clock=time.thread_time) if threads == 1 else None
    return out


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
        f" {'torch ms':>9} {'x torch':>8} {'cpu ms':>8} {'cpu GMAC/s':>10} {'x torch':>8}"
    )
    print(f"CPU: {cpu_model()}; available kernels: {K.available_kernels()}")
    print("time: best wall time; cpu: best CPU time of the calling thread (1 thread only)")
    print(header)
    print("-" * len(header))

    def fmt(v, spec, width):
        return format(v, spec).rjust(width) if v is not None else "-".rjust(width)

    for shape in args.shapes:
        M, N, Kdim = SHAPES[shape]
        macs = M * N * Kdim
        a = K.pack_signs(np.where(rng.random((M, Kdim)) < 0.5, -1, 1).astype(np.int8))
        w = K.pack_signs(np.where(rng.random((N, Kdim)) < 0.5, -1, 1).astype(np.int8))
        if torch is not None:
            ta, tw = torch.randn(M, Kdim), torch.randn(N, Kdim)
        for t in threads:
            ref = {"wall": None, "cpu": None}
            block = []
            for kern in kernels:
                m = measure(
                    lambda a=a, w=w, n=Kdim, k=kern, t=t: K.bgemm(a, w, n, kernel=k, threads=t),
                    args.repeats,
                    t,
                )
                if torch is not None:
                    # measured right after each kernel, in the same conditions; the best is kept
                    torch.set_num_threads(t)
                    with torch.inference_mode():
                        tm = measure(
                            lambda ta=ta, tw=tw: torch.nn.functional.linear(ta, tw),
                            args.repeats,
                            t,
                        )
                    for key in ref:
                        if tm[key] is not None:
                            ref[key] = tm[key] if ref[key] is None else min(ref[key], tm[key])
                block.append((kern, m))
            for kern, m in block:
                r = {
                    "shape": shape,
                    "M": M,
                    "N": N,
                    "K": Kdim,
                    "kernel": kern,
                    "threads": t,
                    "time_s": m["wall"],
                    "binary_gmacs": macs / m["wall"] / 1e9,
                    "torch_f32_time_s": ref["wall"],
                    "speedup_vs_torch_f32": ref["wall"] / m["wall"] if ref["wall"] else None,
                    "cpu_time_s": m["cpu"],
                    "cpu_binary_gmacs": macs / m["cpu"] / 1e9 if m["cpu"] else None,
                    "torch_f32_cpu_time_s": ref["cpu"],
                    "cpu_speedup_vs_torch_f32": ref["cpu"] / m["cpu"]
                    if ref["cpu"] and m["cpu"]
                    else None,
                }
                rows.append(r)
                print(
                    f"{shape:>15} {kern:>9} {t:>3} {r['time_s'] * 1e3:9.3f}"
                    f" {r['binary_gmacs']:11.1f} {fmt(ref['wall'] and ref['wall'] * 1e3, '.3f', 9)}"
                    f" {fmt(r['speedup_vs_torch_f32'], '.1f', 8)}"
                    f" {fmt(m['cpu'] and m['cpu'] * 1e3, '.3f', 8)}"
                    f" {fmt(r['cpu_binary_gmacs'], '.1f', 10)}"
                    f" {fmt(r['cpu_speedup_vs_torch_f32'], '.1f', 8)}"
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
        "timing": "best of the repeats (wall time; and, with 1 thread, CPU time of the calling"
        " thread); torch measured right after each kernel in the same run, best kept",
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
