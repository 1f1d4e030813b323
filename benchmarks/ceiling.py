"""The instruction ceilings of this machine's binary GEMM kernels, measured.

    python benchmarks/ceiling.py                 # ~10 s: table + benchmarks/results/ceiling.json
    python benchmarks/ceiling.py --seconds 30    # longer sampling

A GEMM cannot run faster than the register-only loop of the instruction it is built on. This
measures, on this machine and in interleaved rounds (so that a shared machine's noise hits them
alike), four loops from ``benchmarks/ceiling.c`` (built here with the C compiler, called
through ctypes):

- **VPOPCNTQ**: XOR + popcount + add on zmm registers, 512 binary multiply-adds each (the
  ``avx512`` kernels' inner loop without its loads);
- **TDPBSSD, loaded tiles**: the AMX tile product on ±1 bytes loaded from memory, 16 384
  multiply-adds each (the ``amx-tiles`` binary GEMM's inner loop without its loads);
- **TDPBSSD, init tiles**: the same on tiles never loaded since LDTILECFG, which the hardware
  knows to be zero: on some CPUs it runs faster than any real data, so a ceiling measured that
  way overstates what a GEMM can reach;
- **TDPBSSD 2 × 2 block, L1 loads**: the block every tile GEMM here runs, 4 tile loads (from a
  16 KiB buffer that stays in L1) per 4 products: the ceiling of a tile GEMM with its loads.

Then, for the loaded-tile loop: how steady it is over one continuous second (chunks of ~0.25 ms:
the fraction within 25 % of the fastest chunk), and how fast it starts after the core was idle
(10 times 50 ms asleep, then chunks of ~50 µs: the median per chunk). Rates are binary MACs per
second (one int8 multiply-add of ±1 bytes is one binary MAC).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "ceiling.c"
RESULTS = HERE / "results"

POPCOUNT_MACS_PER_ITER = 16 * 512
TILE_MACS_PER_ITER = 4 * 16 * 16 * 64


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


class Ceiling:
    """The loops of ceiling.c, compiled into a temporary shared library.

    ``popcount`` / ``tiles`` say whether this CPU (and, for tiles, Linux) can run each loop;
    ``popcount_seconds(macs)``, ``tile_seconds(macs, loaded)`` and ``tile_block_seconds(macs)``
    run about ``macs`` binary multiply-adds and return the loop's own elapsed seconds.
    """

    def __init__(self) -> None:
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise RuntimeError("no C compiler (cc or gcc, or $CC) to build benchmarks/ceiling.c")
        self._dir = tempfile.TemporaryDirectory(prefix="binarynet-ceiling-")
        lib = Path(self._dir.name) / "libceiling.so"
        try:
            done = subprocess.run(
                [cc, "-O2", "-shared", "-fPIC", str(SOURCE), "-o", str(lib)],
                capture_output=True,
                text=True,
            )
        except OSError as e:
            raise RuntimeError(f"cannot run the C compiler {cc!r}: {e.strerror}") from None
        if done.returncode != 0:
            raise RuntimeError(f"{cc} could not build {SOURCE.name}: {done.stderr.strip()[:300]}")
        self._lib = ctypes.CDLL(str(lib))
        self._lib.popcount_macs.restype = ctypes.c_double
        self._lib.popcount_macs.argtypes = [ctypes.c_long]
        self._lib.tile_macs.restype = ctypes.c_double
        self._lib.tile_macs.argtypes = [ctypes.c_long, ctypes.c_int]
        self._lib.tile_block_macs.restype = ctypes.c_double
        self._lib.tile_block_macs.argtypes = [ctypes.c_long]
        flags = cpu_flags()
        self.popcount = "avx512_vpopcntdq" in flags
        self.tiles = {"amx_tile", "amx_int8"} <= flags and self._lib.request_tiles() == 0

    def popcount_seconds(self, macs: float) -> float:
        return self._lib.popcount_macs(max(1, round(macs / POPCOUNT_MACS_PER_ITER)))

    def tile_seconds(self, macs: float, loaded: bool = True) -> float:
        return self._lib.tile_macs(max(1, round(macs / TILE_MACS_PER_ITER)), int(loaded))

    def tile_block_seconds(self, macs: float) -> float:
        return self._lib.tile_block_macs(max(1, round(macs / TILE_MACS_PER_ITER)))


def _summary(rates: list[float]) -> dict:
    s = sorted(rates)
    return {
        "median": statistics.median(s),
        "p10": s[len(s) // 10],
        "p90": s[min(len(s) - 1, (9 * len(s)) // 10)],
        "best": s[-1],
        "samples": len(s),
    }


def measure(ceiling: Ceiling, seconds: float) -> dict:
    """Interleaved rounds of every loop this CPU can run, ~2 ms of work each, for ``seconds``."""
    loops = {}
    if ceiling.popcount:
        loops["vpopcntq"] = lambda m: ceiling.popcount_seconds(m)
    if ceiling.tiles:
        loops["tdpbssd_loaded"] = lambda m: ceiling.tile_seconds(m, True)
        loops["tdpbssd_init"] = lambda m: ceiling.tile_seconds(m, False)
        loops["tdpbssd_block_l1"] = lambda m: ceiling.tile_block_seconds(m)
    if not loops:
        return {}
    # Size each sample to ~2 ms from a first, rough rate.
    size = {}
    for name, fn in loops.items():
        fn(1e9)  # warm-up
        size[name] = 2e-3 * 1e9 / fn(1e9)  # MACs in ~2 ms
    rates: dict[str, list[float]] = {name: [] for name in loops}
    end = time.perf_counter() + seconds
    order = list(loops)
    while time.perf_counter() < end:
        for name in order:
            rates[name].append(size[name] / loops[name](size[name]))
        order.reverse()
    return {name: _summary(r) for name, r in rates.items()}


def steadiness(ceiling: Ceiling, seconds: float = 1.0, chunk: float = 2.5e-4) -> dict:
    """The loaded-tile loop over one continuous stretch, in chunks of ~``chunk`` seconds."""
    ceiling.tile_seconds(2e9)
    macs = chunk * 2e9 / ceiling.tile_seconds(2e9)
    rates, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        rates.append(macs / ceiling.tile_seconds(macs))
    best = max(rates)
    return {
        "chunk_seconds": chunk,
        "chunks": len(rates),
        "fraction_within_25pct_of_best": sum(r >= 0.75 * best for r in rates) / len(rates),
        **_summary(rates),
    }


def warm_up(ceiling: Ceiling, chunk: float = 5e-5, chunks: int = 16, repeats: int = 10) -> dict:
    """The loaded-tile loop right after the core was idle: ``repeats`` times, 50 ms asleep and
    then ``chunks`` back-to-back chunks of ~``chunk`` s; the median rate of each chunk position."""
    macs = chunk * statistics.median(2e9 / ceiling.tile_seconds(2e9) for _ in range(5))
    runs = []
    for _ in range(repeats):
        time.sleep(0.05)
        runs.append([macs / ceiling.tile_seconds(macs) for _ in range(chunks)])
    return {
        "chunk_seconds": chunk,
        "repeats": repeats,
        "median_by_chunk": [statistics.median(r[i] for r in runs) for i in range(chunks)],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--seconds", type=float, default=6.0, help="interleaved sampling time (default 6)"
    )
    p.add_argument("--out", type=Path, default=RESULTS / "ceiling.json")
    args = p.parse_args()
    if not 0 < args.seconds < 3600:
        p.error(f"--seconds must be positive and under an hour, got {args.seconds}")
    # The output's folder first, so that a bad --out fails before the measurement, not after.
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: cannot create {args.out.parent} for --out: {e.strerror}", file=sys.stderr)
        return 2
    try:
        ceiling = Ceiling()
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not (ceiling.popcount or ceiling.tiles):
        print(
            "error: this CPU has neither AVX-512 VPOPCNTDQ nor AMX-INT8: nothing to measure",
            file=sys.stderr,
        )
        return 2
    rounds = measure(ceiling, args.seconds)
    result = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "load_average": os.getloadavg()[0],
        "interleaved": rounds,
    }
    names = {
        "vpopcntq": "VPOPCNTQ (xor, popcount, add)",
        "tdpbssd_loaded": "TDPBSSD, loaded ±1 tiles",
        "tdpbssd_init": "TDPBSSD, init-state tiles",
        "tdpbssd_block_l1": "TDPBSSD 2×2 block, L1 tile loads",
    }
    print(
        f"Instruction ceilings, interleaved ~2 ms samples for {args.seconds:g} s "
        f"(binary MAC/s, × 10¹²):"
    )
    print(f"  {'loop':32s} {'median':>8s} {'p10':>8s} {'p90':>8s} {'best':>8s} {'samples':>8s}")
    for key, s in rounds.items():
        print(
            f"  {names[key]:32s} {s['median'] / 1e12:8.2f} {s['p10'] / 1e12:8.2f} "
            f"{s['p90'] / 1e12:8.2f} {s['best'] / 1e12:8.2f} {s['samples']:8d}"
        )
    if ceiling.tiles:
        st = steadiness(ceiling)
        wu = warm_up(ceiling)
        result["tdpbssd_loaded_continuous"] = st
        result["tdpbssd_loaded_after_idle"] = wu
        print(
            f"TDPBSSD on loaded tiles, 1 s without a pause ({st['chunks']} chunks of "
            f"{st['chunk_seconds'] * 1e3:.2f} ms): median {st['median'] / 1e12:.2f}, best "
            f"{st['best'] / 1e12:.2f}; {100 * st['fraction_within_25pct_of_best']:.0f} % of "
            f"the chunks within 25 % of the best"
        )
        by = wu["median_by_chunk"]
        first = ", ".join(f"{by[i] / 1e12:.2f}" for i in (0, 1, 2, 4, 8, len(by) - 1))
        print(
            f"after 50 ms idle ({wu['repeats']} times), chunks 1, 2, 3, 5, 9 and {len(by)} of "
            f"{wu['chunk_seconds'] * 1e6:.0f} µs, median: {first}"
        )
    tmp = args.out.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(args.out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        print(f"error: cannot write {args.out}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BrokenPipeError:  # the reader (| head) went away: nothing left to say
        sys.stderr.close()
        raise SystemExit(0) from None
