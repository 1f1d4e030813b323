"""The paper's GPU comparison (Courbariaux et al. 2016, Section 4 and Figure 3) on this GPU.

1. Matrix product of S×S by S×S ±1 matrices (S = 8192 as in the paper, and smaller):
      binary      Triton XNOR-popcount kernel on packed int32 words (binarynet.backends.gpu.bgemm),
      the
                  operands packed beforehand (the packing of the activations is timed apart:
                  ``pack`` column)
      binary+thr  the same with the fused threshold → packed output (the next layer's input)
      naive fp32  the unoptimised float kernel: the same Triton loop with float multiply-adds
                  (the paper's baseline: its XNOR kernel is that kernel with the SWAR popcount)
      torch fp32  torch.matmul = cuBLAS, float32 with TF32 off (true float32)
      torch fp16  torch.matmul = cuBLAS, float16 on the tensor cores
   Every result is checked equal to the float32 product (exact: sums of ±1).
2. The paper's MNIST MLP 784-4096-4096-4096-10 end to end at batch 256 and 1 (option
   --batches), uint8 input already on the GPU, random ±1 weights and thresholds (speed only):
      binary      bit planes of the input + bitplane_gemm (first layer, the paper's Algorithm 5),
                  threshold → bits, two bgemm_threshold, bgemm for the 10 scores
      naive fp32  / torch fp32 / torch fp16: the same network in floats (±1 activations as
                  floats, threshold by comparisons); fp16 feeds the first layer x/256 (exact)
                  but its first-layer sums round, so it is timed, not checked
   binary and the float32 paths are checked to give the same integer scores.

Times: CUDA events, the median of --reps runs after warm-up. The binary and the naive kernels
each run with the fastest of a few launch configurations (tile, warps, unroll), tried first on
each size (--no-tune: the defaults). Prints a table and writes JSON (default
benchmarks/results/gpu_bgemm.json).

Without a CUDA device it says so and exits 0; ``--interpret`` instead runs a tiny smoke test of
every path under Triton's CPU interpreter (correctness only; its times mean nothing; no JSON
unless --out is given).

    python benchmarks/gpu_bgemm.py                       # on a GPU machine
    python benchmarks/gpu_bgemm.py --sizes 4096 8192 --batches 256 1 10000
    python benchmarks/gpu_bgemm.py --interpret           # anywhere with triton
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
MLP_WIDTHS = (784, 4096, 4096, 4096, 10)
INTERPRET_WIDTHS = (784, 128, 128, 128, 10)

# Launch configurations tried per size: (block_m, block_n, num_warps, unroll). Compiled for sm_90
# without spills (python -m binarynet.backends.gpu.compile_check --block-m ... --num-warps ...).
CONFIGS = [(64, 64, 4, 1), (64, 64, 8, 1), (128, 64, 8, 1), (64, 128, 8, 1), (64, 64, 4, 2)]


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


class Timer:
    """Median time of fn() in seconds: CUDA events on a GPU, perf_counter under the
    interpreter (one run: those times only show that the path runs)."""

    def __init__(self, torch, device, reps: int, min_time: float = 0.1) -> None:
        self.torch, self.device, self.reps, self.min_time = torch, device, reps, min_time

    def __call__(self, fn: Callable[[], object], reps: int | None = None) -> float:
        reps = self.reps if reps is None else reps
        if self.device.type != "cuda":
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
        torch = self.torch
        fn()  # compile / warm up
        fn()
        torch.cuda.synchronize()
        times: list[float] = []
        spent = 0.0
        while len(times) < reps or (spent < self.min_time and len(times) < 50 * reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            dt = start.elapsed_time(end) / 1e3
            times.append(dt)
            spent += dt
        return statistics.median(times)


def _tune(timer: Timer, make: Callable[[tuple], Callable[[], object]], tune: bool):
    """(best config, its time) among CONFIGS (or only the default without tuning)."""
    configs = CONFIGS if tune else CONFIGS[:1]
    if len(configs) == 1:
        return configs[0], timer(make(configs[0]))
    trial = {c: timer(make(c), reps=3) for c in configs}
    best = min(trial, key=trial.get)
    return best, timer(make(best))


def _cfg_kwargs(c: tuple) -> dict:
    return {"block_m": c[0], "block_n": c[1], "num_warps": c[2], "unroll": c[3]}


def _cfg_name(c: tuple) -> str:
    return f"{c[0]}x{c[1]}/w{c[2]}/u{c[3]}"


# --------------------------------------------------------------------------------------------
# Matrix product


def bench_matmul(g, torch, device, timer: Timer, size: int, tune: bool) -> dict:
    gen = torch.Generator(device=device).manual_seed(size)
    A = torch.randint(0, 2, (size, size), device=device, generator=gen).float() * 2 - 1
    W = torch.randint(0, 2, (size, size), device=device, generator=gen).float() * 2 - 1
    B = W.t().contiguous()  # A @ B = Σ_k A[m, k] W[n, k]
    pa, pw = g.pack_signs_gpu(A), g.pack_signs_gpu(W)
    lo = torch.zeros(size, dtype=torch.int32, device=device)
    hi = torch.full((size,), size, dtype=torch.int32, device=device)
    A16, B16 = A.half(), B.half()
    row: dict = {"M": size, "N": size, "K": size}

    ref = torch.matmul(A, B)
    row["torch_fp32_s"] = timer(lambda: torch.matmul(A, B))
    row["torch_fp16_s"] = timer(lambda: torch.matmul(A16, B16))
    exact = ref.to(torch.int32)

    cfg, row["binary_s"] = _tune(
        timer, lambda c: lambda: g.bgemm(pa, pw, size, **_cfg_kwargs(c)), tune
    )
    row["binary_config"] = _cfg_name(cfg)
    out = g.bgemm(pa, pw, size, **_cfg_kwargs(cfg))
    row["binary_exact"] = bool(torch.equal(out, exact))
    row["binary_threshold_s"] = timer(
        lambda: g.bgemm_threshold(pa, pw, size, lo, hi, **_cfg_kwargs(cfg))
    )
    bits = g.bgemm_threshold(pa, pw, size, lo, hi, **_cfg_kwargs(cfg))
    signs = torch.where((exact >= lo) & (exact <= hi), 1, -1).to(torch.int8)
    row["binary_threshold_exact"] = bool(torch.equal(bits, g.pack_signs_gpu(signs)))
    row["pack_signs_s"] = timer(lambda: g.pack_signs_gpu(A))
    del out, bits, signs

    cfg, row["naive_fp32_s"] = _tune(
        timer, lambda c: lambda: g.naive_float_gemm(A, B, **_cfg_kwargs(c)), tune
    )
    row["naive_config"] = _cfg_name(cfg)
    row["naive_exact"] = bool(torch.equal(g.naive_float_gemm(A, B, **_cfg_kwargs(cfg)), ref))
    row["torch_fp16_exact"] = bool(torch.equal(torch.matmul(A16, B16).float(), ref))
    for key in ("binary", "naive_fp32", "torch_fp32", "torch_fp16"):
        row[f"{key}_tmacs"] = size**3 / row[f"{key}_s"] / 1e12
    return row


# --------------------------------------------------------------------------------------------
# MNIST MLP


class MLP:
    """Random ±1 weights and integer thresholds for the widths, in every format the paths use."""

    def __init__(self, g, torch, device, widths: tuple[int, ...], seed: int = 0) -> None:
        gen = torch.Generator(device=device).manual_seed(seed)
        self.g, self.torch, self.widths = g, torch, widths
        self.W, self.B, self.B16, self.packed, self.lo, self.hi = [], [], [], [], [], []
        for i, (k, n) in enumerate(itertools.pairwise(widths)):
            W = torch.randint(0, 2, (n, k), device=device, generator=gen).float() * 2 - 1
            self.W.append(W)
            self.B.append(W.t().contiguous())
            self.B16.append(self.B[-1].half())
            self.packed.append(g.pack_signs_gpu(W))
            # Intervals around the typical values so that about half the units are −1.
            scale = 128 * k**0.5 if i == 0 else k**0.5
            lo = (torch.rand(n, device=device, generator=gen) * 2 - 1.5) * scale
            hi = lo + torch.rand(n, device=device, generator=gen) * 2 * scale
            self.lo.append(lo.round().to(torch.int32))
            self.hi.append(hi.round().to(torch.int32))
        self.rowsum0 = self.W[0].sum(1)

    def binary(self, x_u8, cfg: dict):
        g = self.g
        k0 = self.widths[0]
        y = g.bitplane_gemm(g.pack_bitplanes_gpu(x_u8), self.packed[0], k0)
        h = g.threshold_bits_gpu(y, self.lo[0], self.hi[0])
        last = len(self.packed) - 1
        for i in range(1, last):
            h = g.bgemm_threshold(h, self.packed[i], self.widths[i], self.lo[i], self.hi[i], **cfg)
        return g.bgemm(h, self.packed[last], self.widths[last], **cfg)

    def floats(self, x_u8, matmul, dtype):
        torch = self.torch
        h = x_u8.to(dtype)
        first_scale = 1.0
        if dtype == torch.float16:  # Σ x·w reaches 784·255 > 65504: feed x/256 (exact)
            h, first_scale = h / 256, 1 / 256
        last = len(self.B) - 1
        for i in range(last + 1):
            B = self.B16[i] if dtype == torch.float16 else self.B[i]
            y = matmul(h, B)
            if i == last:
                return y
            s = first_scale if i == 0 else 1.0
            inside = (y >= self.lo[i] * s) & (y <= self.hi[i] * s)
            h = torch.where(inside, 1.0, -1.0).to(dtype)
        raise AssertionError

    def cpu_engine(self, x_u8: np.ndarray, threads: int) -> np.ndarray:
        """The same network on the CPU kernels (binarynet._kernels), NumPy in and out."""
        import binarynet._kernels as K

        g = self.g
        opts = {"threads": threads}
        y = K.bitplane_gemm(x_u8, g.to_uint64(self.packed[0]), self.widths[0], **opts)
        lo0, hi0 = self.lo[0].cpu().numpy(), self.hi[0].cpu().numpy()
        h = K.pack_signs(np.where((y >= lo0) & (y <= hi0), 1, -1).astype(np.int8))
        last = len(self.packed) - 1
        for i in range(1, last):
            h = K.bgemm_threshold(
                h, g.to_uint64(self.packed[i]), self.widths[i],
                self.lo[i].cpu().numpy(), self.hi[i].cpu().numpy(), **opts,
            )  # fmt: skip
        return K.bgemm(h, g.to_uint64(self.packed[last]), self.widths[last], **opts)


def bench_mlp(g, torch, device, timer: Timer, widths, batch: int, tune: bool, cpu: bool):
    net = MLP(g, torch, device, widths)
    gen = torch.Generator(device=device).manual_seed(batch)
    x = torch.randint(0, 256, (batch, widths[0]), device=device, generator=gen).to(torch.uint8)
    row: dict = {"batch": batch, "widths": list(widths)}

    cfg, row["binary_s"] = _tune(timer, lambda c: lambda: net.binary(x, _cfg_kwargs(c)), tune)
    row["binary_config"] = _cfg_name(cfg)
    scores = net.binary(x, _cfg_kwargs(cfg))
    ref = net.floats(x, torch.matmul, torch.float32)
    row["torch_fp32_s"] = timer(lambda: net.floats(x, torch.matmul, torch.float32))
    row["torch_fp16_s"] = timer(lambda: net.floats(x, torch.matmul, torch.float16))
    row["binary_exact"] = bool(torch.equal(scores, ref.to(torch.int32)))

    def naive(c):
        kw = _cfg_kwargs(c)
        return lambda: net.floats(x, lambda a, b: g.naive_float_gemm(a, b, **kw), torch.float32)

    cfg, row["naive_fp32_s"] = _tune(timer, naive, tune)
    row["naive_config"] = _cfg_name(cfg)
    row["naive_exact"] = bool(torch.equal(naive(cfg)(), ref))
    if cpu:
        import binarynet._kernels as K

        threads = K.get_num_threads()
        x_np = x.cpu().numpy()
        t0 = time.perf_counter()
        cpu_scores = net.cpu_engine(x_np, threads)
        best = time.perf_counter() - t0
        for _ in range(2):
            t0 = time.perf_counter()
            net.cpu_engine(x_np, threads)
            best = min(best, time.perf_counter() - t0)
        row["cpu_engine_s"] = best
        row["cpu_engine_threads"] = threads
        row["cpu_engine_exact"] = bool(np.array_equal(cpu_scores, scores.cpu().numpy()))
    return row


# --------------------------------------------------------------------------------------------


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:.3f}"


def _x(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{b / a:.1f}x"


def print_tables(result: dict) -> None:
    if result["interpreter"]:
        print("\n(interpreter smoke test: the times below only show that each path runs)")
    print(f"\nMatrix product S×S×S (±1), {result['device']}; median ms")
    head = (
        f"{'S':>6} {'binary':>9} {'bin+thr':>9} {'pack':>8} {'naive f32':>10} {'torch f32':>10}"
        f" {'torch f16':>10} {'vs naive':>9} {'vs f32':>7} {'vs f16':>7} {'exact':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in result["matmul"]:
        exact = all(r[k] for k in ("binary_exact", "binary_threshold_exact", "naive_exact"))
        print(
            f"{r['M']:>6} {_ms(r['binary_s']):>9} {_ms(r['binary_threshold_s']):>9}"
            f" {_ms(r['pack_signs_s']):>8} {_ms(r['naive_fp32_s']):>10}"
            f" {_ms(r['torch_fp32_s']):>10} {_ms(r['torch_fp16_s']):>10}"
            f" {_x(r['binary_s'], r['naive_fp32_s']):>9} {_x(r['binary_s'], r['torch_fp32_s']):>7}"
            f" {_x(r['binary_s'], r['torch_fp16_s']):>7} {'yes' if exact else 'NO':>6}"
        )
    if not result["mlp"]:
        return
    widths = "-".join(map(str, result["mlp"][0]["widths"]))
    print(f"\nMLP {widths} end to end (input on the device), median ms")
    head = (
        f"{'batch':>6} {'binary':>9} {'naive f32':>10} {'torch f32':>10} {'torch f16':>10}"
        f" {'vs naive':>9} {'vs f32':>7} {'vs f16':>7} {'cpu engine':>11} {'exact':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in result["mlp"]:
        exact = r["binary_exact"] and r["naive_exact"] and r.get("cpu_engine_exact", True)
        print(
            f"{r['batch']:>6} {_ms(r['binary_s']):>9} {_ms(r['naive_fp32_s']):>10}"
            f" {_ms(r['torch_fp32_s']):>10} {_ms(r['torch_fp16_s']):>10}"
            f" {_x(r['binary_s'], r['naive_fp32_s']):>9} {_x(r['binary_s'], r['torch_fp32_s']):>7}"
            f" {_x(r['binary_s'], r['torch_fp16_s']):>7} {_ms(r.get('cpu_engine_s')):>11}"
            f" {'yes' if exact else 'NO':>6}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", nargs="*", type=int, default=[1024, 2048, 4096, 8192])
    p.add_argument("--batches", nargs="*", type=int, default=[256, 1])
    p.add_argument("--reps", type=int, default=20, help="timed runs per measurement (median)")
    p.add_argument("--no-tune", action="store_true", help="default launch configuration only")
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU engine column of the MLP")
    p.add_argument("--interpret", action="store_true", help="tiny smoke test on the CPU")
    p.add_argument("--out", type=Path, default=None, help="default: results/gpu_bgemm.json")
    args = p.parse_args(argv)

    if args.interpret:
        os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are defined
    try:
        import torch

        import binarynet.backends.gpu as g
    except ImportError as e:
        print(f"gpu_bgemm: {e}; nothing to run")
        return 0
    if not g.triton_available():
        print("gpu_bgemm: triton is not installed (pip install 'binarynet[gpu]'); nothing to run")
        return 0
    if args.interpret:
        device = torch.device("cpu")
        sizes, batches, widths, tune, cpu = [64], [4], INTERPRET_WIDTHS, False, True
        out = args.out
    else:
        if not torch.cuda.is_available():
            print(
                "gpu_bgemm: no CUDA device here, nothing measured "
                "(--interpret runs a smoke test under Triton's CPU interpreter)"
            )
            return 0
        device = torch.device("cuda")
        sizes, batches, widths = args.sizes, args.batches, MLP_WIDTHS
        tune, cpu = not args.no_tune, not args.no_cpu
        out = args.out or RESULTS / "gpu_bgemm.json"
        torch.backends.cuda.matmul.allow_tf32 = False  # torch fp32 = true float32
    g.kernels(interpret=args.interpret)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

    import triton

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name = f"{props.name} (sm_{props.major}{props.minor}, {props.multi_processor_count} SMs)"
    else:
        name = f"Triton interpreter on {platform.processor() or 'CPU'} (smoke test, not timed)"
    result: dict = {
        "benchmark": "gpu_bgemm",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": name,
        "interpreter": args.interpret,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": triton.__version__,
        "git_commit": _git_commit(),
        "tf32": False,
        "reps": args.reps,
        "timing": "median of CUDA-event times after 2 warm-up runs; binary and naive kernels "
        "with the fastest of the launch configurations tried (block_m x block_n / warps / "
        "unroll)",
        "popcount": "SWAR (interpreter)"
        if args.interpret
        else ("SWAR" if os.environ.get("BINARYNET_GPU_POPC") == "swar" else "libdevice popc"),
        "matmul": [],
        "mlp": [],
    }
    timer = Timer(torch, device, args.reps)
    print(f"gpu_bgemm on {name}; torch {torch.__version__}, triton {triton.__version__}")
    for size in sizes:
        print(f"matrix product {size}^3 ...", flush=True)
        result["matmul"].append(bench_matmul(g, torch, device, timer, size, tune))
        if device.type == "cuda":
            torch.cuda.empty_cache()
    for batch in batches:
        print(f"MLP batch {batch} ...", flush=True)
        result["mlp"].append(bench_mlp(g, torch, device, timer, widths, batch, tune, cpu))
    print_tables(result)
    bad = [
        (kind, r.get("M", r.get("batch")), key)
        for kind in ("matmul", "mlp")
        for r in result[kind]
        for key, v in r.items()
        if key.endswith("_exact") and key != "torch_fp16_exact" and v is False
    ]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    if bad:
        print(f"MISMATCH: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
