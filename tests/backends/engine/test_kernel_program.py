"""The standalone kernel test program (csrc/tests/kernel_test.cc, built by tools/kernel_test.sh).

Every kernel variant against the reference kernels, bit for bit, on random shapes, without
Python in the loop: natively (the x86 variants this CPU has) and cross-compiled for aarch64 and
run under QEMU as a Cortex-A72 (NEON without the dot product) and as ``-cpu max`` (NEON with the
dot product), which checks the ARM kernels without an ARM machine. The arm64 run skips when
``aarch64-linux-gnu-g++`` or ``qemu-aarch64`` is missing (Debian: ``apt-get install
g++-aarch64-linux-gnu qemu-user``; ``.ci/run`` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tools" / "kernel_test.sh"

pytestmark = pytest.mark.skipif(
    not (ROOT / "csrc" / "tests" / "kernel_test.cc").is_file(),
    reason="needs the source tree (csrc/)",
)


def run(target: str, *args: str) -> str:
    proc = subprocess.run(
        ["bash", str(SCRIPT), target, *args],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "BINARYNET_KERNEL": ""},
    )
    if proc.returncode == 77:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="no C++ compiler")
def test_native_variants_match_reference() -> None:
    out = run("native", "--cases", "25")
    assert "portable: ok" in out
    assert out.rstrip().endswith("checks passed")


def test_arm64_variants_match_reference_under_qemu() -> None:
    out = run("arm64", "--cases", "40")
    # Cortex-A72: NEON without the dot product; -cpu max: both NEON variants.
    a72, _, cpu_max = out.partition("== qemu-aarch64 -cpu max")
    assert "kernels: portable neon (default neon)" in a72
    assert "neon: ok" in a72 and "neon-dotprod" not in a72
    assert "neon: ok" in cpu_max and "neon-dotprod: ok" in cpu_max
    assert out.count("checks passed") == 2


def test_bad_argument_exits_2() -> None:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "riscv"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "usage: tools/kernel_test.sh native|arm64" in proc.stderr


def test_neon_gemm_inner_loop_at_least_as_dense_as_dabnn() -> None:
    """The panel micro-kernel's inner loop, from the compiler's aarch64 assembly: at least
    daBNN's 2048 binary MACs per 48 NEON arithmetic instructions (docs/arm.md)."""
    if shutil.which("aarch64-linux-gnu-g++") is None:
        pytest.skip("aarch64-linux-gnu-g++ not found")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "neon_inner_loop.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    loops = json.loads(proc.stdout)
    panel = [r for r in loops if r["binary_macs"] == 2048]
    assert panel, loops
    for r in panel:  # XOR and AND (bit planes) versions
        assert r["neon_arithmetic"] <= 48 and r["macs_per_arithmetic"] >= 2048 / 48
        assert r["loads"] <= 5 and r["instructions"] <= 55
