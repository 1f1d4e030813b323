"""``binarynet bench`` (binarynet.analysis.bench): the figures it prints, its JSON, its errors."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from binarynet.analysis import bench
from binarynet.cli import main

K = pytest.importorskip("binarynet._kernels")


@pytest.fixture(scope="module")
def tiny_bnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from binarynet.export import export
    from binarynet.training.models import mnist_mlp

    torch.manual_seed(0)
    model = mnist_mlp(64, 2).eval()
    path = tmp_path_factory.mktemp("bench") / "tiny.bnn"
    export(model, path, input_shape=(28, 28), model="mnist-mlp-tiny")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["bench", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_model_json(tiny_bnn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, str(tiny_bnn), "--batch", "1", "5", "--threads", "1", "2", "--repeat", "4", "--json"
    )
    assert code == 0, err
    r = json.loads(out)
    assert r["what"] == "model" and r["target"] == str(tiny_bnn)
    assert r["kernel"] == K.default_kernel() and r["kernel"] in r["kernels_available"]
    assert r["model"]["file_bytes"] == tiny_bnn.stat().st_size
    assert r["model"]["input_shape"] == [28, 28] and r["model"]["binary_layers"] == 3
    assert r["repeat"] == 4 and r["warmup"] == 3
    assert [(t["batch"], t["threads"]) for t in r["timings"]] == [(1, 1), (1, 2), (5, 1), (5, 2)]
    for t in r["timings"]:
        samples = t["samples_ms"]
        assert len(samples) == 4
        assert t["median_ms"] == pytest.approx(statistics.median(samples))
        assert t["p90_ms"] == pytest.approx(float(np.percentile(samples, 90)))
        assert t["best_ms"] == min(samples) <= t["median_ms"] <= t["p90_ms"] <= max(samples)
        assert t["throughput"] == pytest.approx(t["batch"] / (t["median_ms"] / 1e3))
        assert t["peak_rss_bytes"] >= r["baseline_rss_bytes"] > 0
        assert t["engine_bytes"] == t["peak_rss_bytes"] - r["baseline_rss_bytes"]


def test_model_table_and_kernel_choice(tiny_bnn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys,
        str(tiny_bnn),
        "--batch",
        "3",
        "--threads",
        "1",
        "--repeat",
        "2",
        "--kernel",
        "portable",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == str(tiny_bnn)
    assert "kernel portable" in lines[1]
    assert "mnist-mlp-tiny" in lines[2] and "3 binary layers" in lines[2]
    row = lines[-1].split()
    assert row[:2] == ["3", "1"] and len(row) == 8
    # (the table rounds the median to µs)
    assert float(row[5]) == pytest.approx(3 / (float(row[2]) / 1e3), rel=0.01)


def test_gemm_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "--gemm", "9", "70", "130", "--threads", "1", "--repeat", "3", "--json"
    )
    assert code == 0, err
    r = json.loads(out)
    assert r["what"] == "gemm" and r["gemm"] == {"M": 9, "N": 70, "K": 130}
    assert r["target"] == "bgemm 9×70×130" and r["model"] is None
    (t,) = r["timings"]
    assert t["threads"] == 1 and len(t["samples_ms"]) == 3
    assert t["throughput"] == pytest.approx(9 * 70 * 130 / (t["median_ms"] / 1e3))


def test_memory_peak_is_reset_per_configuration() -> None:
    if not bench.reset_peak():
        pytest.skip("/proc/self/clear_refs cannot be written here")
    big = np.ones(64 << 20, np.uint8)  # 64 MiB resident
    del big
    assert bench.reset_peak()
    assert bench.peak_rss() < bench.current_rss() + (32 << 20)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "bench takes a MODEL.bnn or --gemm M N K (exactly one of them)"),
        (["x.bnn", "--gemm", "1", "2", "3"], "exactly one of them"),
        (["--gemm", "4", "4", "4", "--batch", "2"], "--batch is for a model"),
        (["missing.bnn"], "missing.bnn: no such model file"),
        (["--gemm", "4", "4", "4", "--kernel", "sse9"], "kernel 'sse9' is not available here"),
    ],
)
def test_bad_arguments_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_bad_kernel_for_model(tiny_bnn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, str(tiny_bnn), "--kernel", "sse9", "--repeat", "1")
    assert code == 2 and out == "" and err.count("\n") == 1 and "sse9" in err


@pytest.mark.parametrize(
    "argv", [["--gemm", "4", "0", "4"], ["--repeat", "0", "--gemm", "1", "1", "1"]]
)
def test_argparse_rejects_non_positive(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", *argv])
    assert exc.value.code == 2


def test_bench_does_not_import_torch(tiny_bnn: Path) -> None:
    code = (
        "import sys\n"
        "from binarynet.analysis import bench\n"
        f"r = bench.bench_model({str(tiny_bnn)!r}, [2], [1], repeat=2, warmup=1)\n"
        "g = bench.bench_gemm(8, 8, 64, [1], repeat=2, warmup=1)\n"
        "assert len(r.timings) == 1 and len(g.timings) == 1\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


# -- sizes that cannot fit, thread counts beyond the cores, long runs ---------------------------

MODEL = "pretrained:mnist-mlp-256"


@pytest.fixture
def one_gib(monkeypatch: pytest.MonkeyPatch) -> int:
    """The memory available, as bench sees it: 1 GiB."""
    monkeypatch.setattr(bench, "available_memory", lambda: (1 << 30, "a test's figure"))
    return 1 << 30


def test_a_gemm_that_cannot_fit_is_refused_before_allocating(
    one_gib: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_operands(*args: object) -> None:
        raise AssertionError("the operands were allocated")

    monkeypatch.setattr(bench, "_random_signs", no_operands)
    code, out, err = run_cli(capsys, "--gemm", "100000", "100000", "100000")
    need = 2 * 100000 * 1563 * 8 + 100000**2 * 4 + 167 * 100000 * 4
    assert code == 2 and out == ""
    assert err == (
        "error: bgemm 100000×100000×100000 (packed A and W 2.3 GiB, the int32 result 37.3 GiB) "
        f"needs about 39.6 GiB ({need} bytes) but 1.0 GiB ({one_gib} bytes) is available "
        "(a test's figure); give smaller M, N, K\n"
    )


def test_a_batch_that_cannot_fit_is_refused_before_allocating(
    one_gib: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[object] = []
    default_rng = np.random.default_rng

    class Rng:
        def __init__(self, seed: int) -> None:
            self.rng = default_rng(seed)

        def integers(self, *args: Any, **kwargs: Any) -> np.ndarray:
            drawn.append(args)
            return self.rng.integers(*args, **kwargs)

    monkeypatch.setattr(bench.np.random, "default_rng", Rng)
    code, out, err = run_cli(capsys, MODEL, "--batch", "1", "10000000")
    assert code == 2 and out == "" and drawn == []
    line = err.strip()
    assert err.count("\n") == 1 and line.startswith(
        "error: batch 10000000 (10000000 inputs of 784 bytes, the scores and the engine's working "
        "memory) needs about 7.8 GiB ("
    )
    need = int(line.split("GiB (")[1].split(" bytes")[0])
    assert need > 10000000 * (784 + 4 * 10 + 8)
    assert line.endswith(
        f"but 1.0 GiB ({one_gib} bytes) is available (a test's figure); give a smaller batch"
    )


def test_available_memory_reads_meminfo_and_the_cgroup_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:    2000000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    monkeypatch.setattr(bench, "_MEMINFO", meminfo)
    monkeypatch.setattr(bench, "_CGROUP", cgroup)
    assert bench.available_memory() == (2000000 * 1024, "MemAvailable of /proc/meminfo")
    (cgroup / "memory.max").write_text("max\n")
    assert bench.available_memory() == (2000000 * 1024, "MemAvailable of /proc/meminfo")
    (cgroup / "memory.max").write_text(f"{1 << 30}\n")
    (cgroup / "memory.current").write_text(f"{1 << 28}\n")
    assert bench.available_memory() == (3 << 28, "memory.max less memory.current of the cgroup")


def test_threads_beyond_the_cores_are_said_and_capped_as_the_kernels_cap_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from binarynet.backends.engine.kernels import MAX_THREADS

    cores = bench.cpu_info()["cores"]
    code, out, err = run_cli(
        capsys, MODEL, "--batch", "1", "--threads", "1", "1000", "--repeat", "2", "--json"
    )
    assert code == 0, err
    r = json.loads(out)
    assert [t["threads"] for t in r["timings"]] == [1, MAX_THREADS]
    assert r["notes"] == [
        f"threads 1000: this machine has {cores} usable cores and the kernels run at most "
        f"{MAX_THREADS} threads: timed with {MAX_THREADS} (oversubscribed)"
    ]
    code, out, err = run_cli(capsys, MODEL, "--batch", "1", "--threads", str(cores + 1))
    assert code == 0, err
    assert (
        f"  note: threads {cores + 1}: this machine has {cores} usable cores: timed with "
        f"{cores + 1} (oversubscribed)\n" in out
    )
    code, out, err = run_cli(capsys, MODEL, "--threads", "2000")
    assert code == 2 and err == "error: thread counts must be at most 1024, got 2000\n"


def test_max_threads_is_the_thread_pools_limit() -> None:
    from binarynet.backends.engine.kernels import MAX_THREADS

    source = Path(__file__).resolve().parents[2] / "csrc" / "threadpool.cc"
    assert f"constexpr int kMaxThreads = {MAX_THREADS};" in source.read_text()


def test_a_long_run_says_its_estimate_and_its_progress(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "LONG_SECONDS", 0.0)  # every run is "long"
    code, out, err = run_cli(
        capsys, MODEL, "--batch", "64", "--threads", "1", "--repeat", "2", "--warmup", "1"
    )
    assert code == 0 and "images/s" in out
    lines = err.splitlines()
    assert lines[0].startswith("bench: batches 64: about ") and lines[0].endswith(
        " s for 3 calls (from a probe call); progress follows, Ctrl-C stops"
    )
    assert lines[-1].startswith("bench: 3/3 calls (batch 64, 1 thread, timed), ")
    assert lines[-1].endswith(" left")
    code, out, err = run_cli(capsys, "--gemm", "64", "64", "128", "--threads", "1", "2")
    assert code == 0
    assert err.splitlines()[0].startswith("bench: bgemm 64×64×128: about ")
    assert "for 46 calls" in err and err.splitlines()[-1].startswith(
        "bench: 46/46 calls (2 threads, timed), "
    )


def test_a_short_run_prints_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, MODEL, "--batch", "1", "--threads", "1", "--repeat", "2")
    assert code == 0 and "images/s" in out and err == ""
