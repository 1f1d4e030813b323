"""benchmarks/ceiling.py: the register-only instruction ceilings build, run and report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "ceiling.py"
sys.path.insert(0, str(SCRIPT.parent))
from ceiling import Ceiling, cpu_flags  # noqa: E402  (benchmarks/ is not a package)

FLAGS = cpu_flags()
HAS_LOOPS = "avx512_vpopcntdq" in FLAGS or {"amx_tile", "amx_int8"} <= FLAGS
needs_cc = pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler to build ceiling.c"
)


@needs_cc
@pytest.mark.skipif(not HAS_LOOPS, reason="neither AVX-512 VPOPCNTDQ nor AMX-INT8 on this CPU")
def test_ceiling_script_writes_its_json(tmp_path):
    out = tmp_path / "ceiling.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "0.2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    loops = result["interleaved"]
    expected = set()
    if "avx512_vpopcntdq" in FLAGS:
        expected.add("vpopcntq")
    if Ceiling().tiles:
        expected |= {"tdpbssd_loaded", "tdpbssd_init", "tdpbssd_block_l1"}
        by_chunk = result["tdpbssd_loaded_after_idle"]["median_by_chunk"]
        assert len(by_chunk) == 16 and all(r > 0 for r in by_chunk)
    assert set(loops) == expected
    for s in loops.values():
        assert s["samples"] >= 1 and 0 < s["p10"] <= s["median"] <= s["best"]
    assert "Instruction ceilings" in done.stdout and f"wrote {out}" in done.stdout
    assert not out.with_suffix(".tmp").exists()


@needs_cc
@pytest.mark.skipif("avx512_vpopcntdq" not in FLAGS, reason="no AVX-512 VPOPCNTDQ")
def test_popcount_loop_time_grows_with_its_work():
    # The loop runs the multiply-adds it is asked for (not hoisted, not cut short): 8× the work
    # takes clearly longer (best of 5 each, so that one preempted sample does not decide).
    c = Ceiling()
    small = min(c.popcount_seconds(2e8) for _ in range(5))
    large = min(c.popcount_seconds(1.6e9) for _ in range(5))
    assert small > 0 and large > 3 * small


def test_ceiling_script_rejects_a_bad_duration(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "0", "--out", str(tmp_path / "c.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--seconds must be positive and under an hour, got 0.0" in done.stderr
    assert not (tmp_path / "c.json").exists()


def test_ceiling_script_rejects_an_output_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "file" / "c.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: cannot create {tmp_path / 'file'} for --out")
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_ceiling_names_a_compiler_that_cannot_run(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(RuntimeError, match="cannot run the C compiler '/nonexistent/cc'"):
        Ceiling()
