"""``binarynet bench``: latency, throughput and memory of a ``.bnn`` model (or of the raw binary
GEMM) on the engine, on whatever CPU it runs on. Torch-free: it imports NumPy, the engine and
``binarynet._kernels`` only, so it runs on a device that has no torch.

    binarynet bench MODEL.bnn [--batch N ...] [--threads T ...] [--repeat R] [--json]
    binarynet bench --gemm M N K [--threads T ...] [--repeat R] [--json]

For every (batch size, thread count): ``warmup`` untimed calls of ``Model.predict`` on random
uint8 inputs of the model's input shape, then ``repeat`` calls each timed alone (wall clock,
``time.perf_counter``). Reported: the median and the 90th percentile of those latencies (ms
per call of the whole batch), the throughput ``batch / median`` (images/s), and the peak memory.

Peak memory is the process's peak resident set (``VmHWM`` of ``/proc/self/status``), reset
before each configuration by writing 5 to ``/proc/self/clear_refs`` (Linux ≥ 4.0), so each
configuration gets its own peak; ``engine_bytes`` is that peak minus the resident set measured
before the model was loaded (interpreter + NumPy + the engine's import), i.e. the weights, the
kernels' scratch and the activations. (tracemalloc would miss the C++ allocations.) Where the
reset is not possible the peak is ``ru_maxrss`` of ``getrusage``, which never decreases — then
every configuration reports the peak so far; ``memory_source`` says which was used.

``--gemm M N K`` times ``binarynet._kernels.bgemm`` on random packed ±1 operands A [M, K] and
W [N, K] (as ``benchmarks/bgemm.py`` and ``benchmarks/engine.py`` do) and reports binary MAC/s
= M·N·K / median.

Before anything large is allocated, the memory a run needs (the inputs and the engine's working
memory of the largest batch; for ``--gemm`` the packed operands and the int32 result) is compared
with the memory available (:func:`available_memory`); a run that cannot fit is refused with both
figures. A thread count above the usable cores is timed as asked (oversubscribed; above
:data:`~binarynet.backends.engine.kernels.MAX_THREADS`, as that many, which is what the kernels
run) and ``notes`` says so. A measurement that one probe call (a small batch, or a few GEMM rows)
predicts to last longer than :data:`LONG_SECONDS` reports its estimate and then its progress
through ``progress`` (``binarynet bench``: lines on stderr).
"""

from __future__ import annotations

import functools
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LONG_SECONDS",
    "BenchResult",
    "Timing",
    "available_memory",
    "bench_gemm",
    "bench_model",
    "format_result",
]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MEMINFO = Path("/proc/meminfo")
_CGROUP = Path("/sys/fs/cgroup")

LONG_SECONDS = 10.0
"""A run predicted to last longer than this reports its progress."""

_PROBE_ROWS = 256
"""Batch size (GEMM rows) of the probe call that predicts a run's duration."""

_PACK_CHUNK_BYTES = 64 << 20
"""float32 signs drawn per chunk when the GEMM's random operands are packed."""

Report = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# Memory


def _status_bytes(key: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in bytes, or None."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def current_rss() -> int:
    """The resident set now (VmRSS), or the peak so far where /proc is missing."""
    rss = _status_bytes("VmRSS")
    return rss if rss is not None else _maxrss_bytes()


def reset_peak() -> bool:
    """Resets the peak resident set (VmHWM) to the current one; False where Linux refuses."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_bytes("VmHWM") is not None


def peak_rss() -> int:
    hwm = _status_bytes("VmHWM")
    return hwm if hwm is not None else _maxrss_bytes()


def available_memory() -> tuple[int, str] | None:
    """(bytes, where the figure comes from): the memory a new allocation can get without
    swapping — ``MemAvailable`` of /proc/meminfo (else the available pages of
    :func:`os.sysconf`), or the cgroup's ``memory.max`` less its ``memory.current`` where that is
    smaller (a container's limit); None where neither is known."""
    found: tuple[int, str] | None = None
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024, "MemAvailable of /proc/meminfo"
    except (OSError, ValueError, IndexError):
        pass
    if found is None:
        try:
            pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            if pages > 0:
                found = pages, "the available pages of sysconf"
        except (AttributeError, OSError, ValueError):
            pass
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            free = int(limit) - int((_CGROUP / "memory.current").read_text())
            if found is None or free < found[0]:
                found = max(free, 0), "memory.max less memory.current of the cgroup"
    except (OSError, ValueError):
        pass
    return found


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_fits(need: int, what: str, hint: str) -> None:
    """ValueError (one line: the bytes needed and available) unless ``need`` bytes fit in the
    available memory; silent where that is unknown."""
    available = available_memory()
    if available is not None and need > available[0]:
        free, source = available
        raise ValueError(
            f"{what} needs about {_size(need)} ({need} bytes) but {_size(free)} ({free} bytes) "
            f"is available ({source}); {hint}"
        )


# --------------------------------------------------------------------------------------------
# Timing


@dataclass
class Timing:
    """One configuration: latencies of ``repeat`` timed calls after ``warmup`` untimed ones."""

    batch: int
    threads: int
    median_ms: float
    p90_ms: float
    best_ms: float
    throughput: float  # items per second: batch / median (images/s, or binary MAC/s for GEMM)
    peak_rss_bytes: int
    engine_bytes: int
    samples_ms: list[float] = field(repr=False)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between order statistics (NumPy's
    default), of a non-empty sequence."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def time_calls(
    fn: Callable[[], object],
    repeat: int,
    warmup: int,
    after_call: Callable[[bool], None] | None = None,
) -> list[float]:
    """Seconds of each of ``repeat`` calls of fn, after ``warmup`` untimed calls;
    ``after_call(timed)`` after each call."""
    for _ in range(warmup):
        fn()
        if after_call is not None:
            after_call(False)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if after_call is not None:
            after_call(True)
    return samples


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Progress:
    """Progress of a run through ``report``, where one probe call predicts it to last longer
    than :data:`LONG_SECONDS`: the estimate up front, then a line per call (at most one a
    second) with the calls done, the time spent and the time left at the rate so far."""

    def __init__(self, report: Report | None, calls: int, estimate: float, what: str) -> None:
        self.report = report if report is not None and estimate > LONG_SECONDS else None
        self.calls, self.done = calls, 0
        self.start = self.last = time.perf_counter()
        self.label = ""
        if self.report is not None:
            self.report(
                f"bench: {what}: about {_duration(estimate)} for {calls} calls (from a probe "
                "call); progress follows, Ctrl-C stops"
            )

    def after_call(self, timed: bool) -> None:
        self.done += 1
        now = time.perf_counter()
        if self.report is None or (now - self.last < 1 and self.done < self.calls):
            return
        self.last = now
        spent = now - self.start
        left = spent / self.done * (self.calls - self.done)
        self.report(
            f"bench: {self.done}/{self.calls} calls ({self.label}, "
            f"{'timed' if timed else 'warm-up'}), {_duration(spent)} spent, about "
            f"{_duration(left)} left"
        )


def _probe_seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _timing(
    fn: Callable[[], object],
    batch: int,
    threads: int,
    work: float,
    repeat: int,
    warmup: int,
    baseline: int,
    resettable: bool,
    progress: _Progress,
) -> Timing:
    if resettable:
        reset_peak()
    samples = time_calls(fn, repeat, warmup, progress.after_call)
    median = statistics.median(samples)
    peak = peak_rss()
    return Timing(
        batch=batch,
        threads=threads,
        median_ms=median * 1e3,
        p90_ms=percentile(samples, 90) * 1e3,
        best_ms=min(samples) * 1e3,
        throughput=work / median if median > 0 else float("inf"),
        peak_rss_bytes=peak,
        engine_bytes=max(0, peak - baseline),
        samples_ms=[s * 1e3 for s in samples],
    )


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class BenchResult:
    """What ``binarynet bench`` prints (``--json``: this as a dict)."""

    what: str  # "model" or "gemm"
    target: str  # the model's path, or "bgemm M×N×K"
    kernel: str
    kernels_available: list[str]
    cpu: dict[str, Any]
    repeat: int
    warmup: int
    memory_source: str
    baseline_rss_bytes: int
    timings: list[Timing]
    model: dict[str, Any] | None = None  # file size, input shape, layers (model runs)
    gemm: dict[str, int] | None = None  # M, N, K (GEMM runs)
    notes: list[str] = field(default_factory=list)  # thread counts beyond the cores, ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_info() -> dict[str, Any]:
    """The CPU model and the cores the process may use (Linux: /proc/cpuinfo)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key = line.split(":", 1)[0].strip()
            if key in ("model name", "Model", "Hardware") and ":" in line:
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {"model": model, "machine": platform.machine(), "cores": usable}


def _memory_source(resettable: bool) -> str:
    if resettable:
        return "VmHWM of /proc/self/status, reset per configuration (/proc/self/clear_refs)"
    return "ru_maxrss (getrusage): the peak so far, never reset"


def _check_run(
    repeat: int, warmup: int, threads: Sequence[int] | None
) -> tuple[list[int], list[str]]:
    """Validates the timing options; returns the thread counts to time (default: 1 and every
    core; above :data:`MAX_THREADS`, that many: what the kernels run) and a note for each count
    beyond the usable cores."""
    from binarynet.backends.engine.kernels import MAX_THREADS

    if repeat < 1 or warmup < 0:
        raise ValueError(f"repeat must be ≥ 1 and warmup ≥ 0, got {repeat} and {warmup}")
    cores = cpu_info()["cores"]
    asked = _check_counts("thread counts", threads or [1, cores])
    if max(asked) > 1024:
        raise ValueError(f"thread counts must be at most 1024, got {max(asked)}")
    notes = []
    for t in asked:
        if t > MAX_THREADS:
            notes.append(
                f"threads {t}: this machine has {cores} usable cores and the kernels run at most "
                f"{MAX_THREADS} threads: timed with {MAX_THREADS} (oversubscribed)"
            )
        elif t > cores:
            notes.append(
                f"threads {t}: this machine has {cores} usable cores: timed with {t} "
                "(oversubscribed)"
            )
    return _check_counts("thread counts", [min(t, MAX_THREADS) for t in asked]), notes


def _result(
    what: str,
    target: str,
    kernel: str,
    repeat: int,
    warmup: int,
    baseline: int,
    resettable: bool,
    timings: list[Timing],
    **extra: Any,
) -> BenchResult:
    """The :class:`BenchResult` of a run, with what every run reports about the machine."""
    from binarynet import _kernels

    return BenchResult(
        what=what,
        target=target,
        kernel=kernel,
        kernels_available=list(_kernels.available_kernels()),
        cpu=cpu_info(),
        repeat=repeat,
        warmup=warmup,
        memory_source=_memory_source(resettable),
        baseline_rss_bytes=baseline,
        timings=timings,
        **extra,
    )


def _check_counts(name: str, values: Sequence[int]) -> list[int]:
    out = []
    for v in values:
        if v < 1:
            raise ValueError(f"{name} must be positive integers, got {v}")
        if v not in out:
            out.append(v)
    return out


def bench_model(
    path: str | os.PathLike[str],
    batches: Sequence[int] = (1, 64),
    threads: Sequence[int] | None = None,
    repeat: int = 20,
    warmup: int = 3,
    kernel: str | None = None,
    seed: int = 0,
    progress: Report | None = None,
) -> BenchResult:
    """Times ``engine.load(path).predict`` on random uint8 batches (see the module docstring).
    ``progress``: called with a line of progress during a long run."""
    from binarynet import _kernels
    from binarynet.backends import engine

    threads, notes = _check_run(repeat, warmup, threads)
    batches = _check_counts("batch sizes", batches)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    baseline = current_rss()
    resettable = reset_peak()
    model = engine.load(path, kernel=kernel, threads=threads[0])
    example = math.prod(model.input_shape)
    largest = max(batches)
    check_fits(
        largest * example + model.working_bytes(largest),
        f"batch {largest} ({largest} inputs of {example} bytes, the scores and the engine's "
        "working memory)",
        "give a smaller batch",
    )
    rng = np.random.default_rng(seed)
    probe_rows = min(largest, _PROBE_ROWS)
    probe = rng.integers(0, 256, (probe_rows, *model.input_shape), dtype=np.uint8)
    per_row = _probe_seconds(functools.partial(model.predict, probe)) / probe_rows
    calls = (repeat + warmup) * len(threads) * len(batches)
    estimate = per_row * (repeat + warmup) * len(threads) * sum(batches)
    clock = _Progress(progress, calls, estimate, f"batches {', '.join(map(str, batches))}")
    timings = []
    for b in batches:
        x = rng.integers(0, 256, (b, *model.input_shape), dtype=np.uint8)
        for t in threads:
            model.threads = t
            clock.label = f"batch {b}, {t} thread{'' if t == 1 else 's'}"
            timings.append(
                _timing(
                    functools.partial(model.predict, x),
                    b,
                    t,
                    b,
                    repeat,
                    warmup,
                    baseline,
                    resettable,
                    clock,
                )
            )
        del x
    info = model.info
    return _result(
        "model",
        str(path),
        model.kernel or _kernels.default_kernel(),
        repeat,
        warmup,
        baseline,
        resettable,
        timings,
        model={
            "file_bytes": info["file_bytes"],
            "input_shape": info["input"]["shape"],
            "num_classes": info["num_classes"],
            "binary_layers": info["binary_layers"],
            "name": info["provenance"].get("model"),
        },
        notes=notes,
    )


def _random_signs(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    """Packed random ±1 rows [rows, k], drawn as float32 signs in chunks of at most
    :data:`_PACK_CHUNK_BYTES` (the same draws as one [rows, k] array)."""
    from binarynet import _kernels

    step = max(1, _PACK_CHUNK_BYTES // (4 * k))
    out = np.empty((rows, (k + 63) // 64), dtype=np.uint64)
    for r in range(0, rows, step):
        n = min(step, rows - r)
        out[r : r + n] = _kernels.pack_signs(rng.standard_normal((n, k), dtype=np.float32))
    return out


def bench_gemm(
    m: int,
    n: int,
    k: int,
    threads: Sequence[int] | None = None,
    repeat: int = 20,
    warmup: int = 3,
    kernel: str | None = None,
    seed: int = 0,
    progress: Report | None = None,
) -> BenchResult:
    """Times ``_kernels.bgemm(a, w, k)`` on random packed A [m, k] and W [n, k].
    ``progress``: called with a line of progress during a long run."""
    from binarynet import _kernels

    threads, notes = _check_run(repeat, warmup, threads)
    for name, v in (("M", m), ("N", n), ("K", k)):
        if v < 1:
            raise ValueError(f"--gemm {name} must be a positive integer, got {v}")
    kname = kernel or _kernels.default_kernel()
    if kname not in _kernels.available_kernels():
        raise ValueError(
            f"kernel {kname!r} is not available here (available: "
            f"{', '.join(_kernels.available_kernels())})"
        )
    words = (k + 63) // 64
    operands, result = (m + n) * words * 8, m * n * 4
    chunk = min(max(m, n), max(1, _PACK_CHUNK_BYTES // (4 * k))) * k * 4
    check_fits(
        operands + result + chunk,
        f"bgemm {m}×{n}×{k} (packed A and W {_size(operands)}, the int32 result {_size(result)})",
        "give smaller M, N, K",
    )
    baseline = current_rss()
    resettable = reset_peak()
    rng = np.random.default_rng(seed)
    a = _random_signs(rng, m, k)
    w = _random_signs(rng, n, k)
    probe_rows = min(m, _PROBE_ROWS)
    per_row = (
        _probe_seconds(functools.partial(_kernels.bgemm, a[:probe_rows], w, k, kernel=kname))
        / probe_rows
    )
    clock = _Progress(
        progress,
        (repeat + warmup) * len(threads),
        per_row * m * (repeat + warmup) * len(threads),
        f"bgemm {m}×{n}×{k}",
    )
    timings = []
    for t in threads:
        clock.label = f"{t} thread{'' if t == 1 else 's'}"
        timings.append(
            _timing(
                functools.partial(_kernels.bgemm, a, w, k, kernel=kname, threads=t),
                m,
                t,
                float(m) * n * k,
                repeat,
                warmup,
                baseline,
                resettable,
                clock,
            )
        )
    return _result(
        "gemm",
        f"bgemm {m}×{n}×{k}",
        kname,
        repeat,
        warmup,
        baseline,
        resettable,
        timings,
        gemm={"M": m, "N": n, "K": k},
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Text


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def format_result(r: BenchResult) -> str:
    """The human-readable table of a result."""
    cpu = r.cpu
    lines = [
        f"{r.target}",
        f"  cpu: {cpu['model']} ({cpu['machine']}, {cpu['cores']} usable cores); kernel "
        f"{r.kernel} (available: {', '.join(r.kernels_available)})",
    ]
    if r.model is not None:
        m = r.model
        lines.append(
            f"  model: {m['name'] or '?'}, {m['file_bytes'] / 1e6:.2f} MB file, input uint8 "
            f"{m['input_shape']}, {m['binary_layers']} binary layers, {m['num_classes']} classes"
        )
    lines.extend(f"  note: {note}" for note in r.notes)
    lines.append(
        f"  {r.repeat} timed calls after {r.warmup} warm-up calls per row; memory: "
        f"{r.memory_source}; baseline {_mib(r.baseline_rss_bytes)} MiB before loading"
    )
    if r.what == "gemm":
        head = f"  {'threads':>7} {'median ms':>10} {'p90 ms':>9} {'best ms':>9} {'GMAC/s':>9}"
        head += f" {'peak MiB':>9}"
        lines.append(head)
        for t in r.timings:
            lines.append(
                f"  {t.threads:>7} {t.median_ms:>10.3f} {t.p90_ms:>9.3f} {t.best_ms:>9.3f} "
                f"{t.throughput / 1e9:>9.1f} {_mib(t.peak_rss_bytes):>9}"
            )
    else:
        head = f"  {'batch':>6} {'threads':>7} {'median ms':>10} {'p90 ms':>9} {'best ms':>9}"
        head += f" {'images/s':>10} {'peak MiB':>9} {'engine MiB':>10}"
        lines.append(head)
        for t in r.timings:
            lines.append(
                f"  {t.batch:>6} {t.threads:>7} {t.median_ms:>10.3f} {t.p90_ms:>9.3f} "
                f"{t.best_ms:>9.3f} {t.throughput:>10.1f} {_mib(t.peak_rss_bytes):>9} "
                f"{_mib(t.engine_bytes):>10}"
            )
    return "\n".join(lines)
