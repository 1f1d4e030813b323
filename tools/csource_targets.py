"""Build and run generated C (:mod:`binarynet.backends.c`) on the targets we check it on.

Shared by ``tests/backends/c/test_c.py`` and ``benchmarks/mcu.py``; needs NumPy and binarynet only.

- host: ``cc`` with any flags (strict C99, sanitizers, -ffp-contract=fast), images on stdin;
- Cortex-M under ``qemu-system-arm`` (``examples/cortex-m``: its Makefile, start-up code and
  linker scripts, so the example a user copies is the one CI runs), output by semihosting;
- Armv8-A Linux: ``aarch64-linux-gnu-gcc -static`` under ``qemu-aarch64``.

Every target prints per image ``class score-bits...`` in hex (see ``tests/backends/c/host_main.c``
and ``examples/cortex-m/main.c``), compared with :func:`expected_lines` from the engine.

Instruction counts on Cortex-M: QEMU's ``-icount shift=0`` advances the virtual clock by exactly
1 ns per instruction executed, and SysTick on the processor clock ticks at the board's CPU
frequency in virtual time (25 MHz on the MPS2 boards, 32 MHz on the MPS3 AN547), so one tick is
40 (MPS2) or 31.25 (AN547) instructions. These are instruction counts, not cycles: QEMU does not
model pipelines, wait states or caches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cortex-m"
HOST_MAIN = ROOT / "tests" / "backends" / "c" / "host_main.c"
STRICT = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")

sys.path.insert(0, str(EXAMPLE))
from make_inputs import expected_lines, images_for, inputs_header  # noqa: E402

__all__ = [
    "BOARDS",
    "STRICT",
    "Board",
    "FirmwareRun",
    "build_firmware",
    "compare",
    "expected_lines",
    "have",
    "images_for",
    "inputs_header",
    "run_firmware",
    "run_hosted",
]


@dataclass(frozen=True)
class Board:
    layout: str  # the example's BOARD (its linker script, boards/<layout>.ld)
    machine: str  # qemu-system-arm -M
    core: str
    instructions_per_tick: float  # SysTick on the CPU clock under -icount shift=0
    const_bytes: int  # room for the model's constants (the linker script's CONST region)
    ram_bytes: int


BOARDS = {
    "m3": Board("mps2-an385", "mps2-an385", "Cortex-M3", 40.0, 4 << 20, 4 << 20),
    "m4": Board("mps2-an386", "mps2-an386", "Cortex-M4F", 40.0, 4 << 20, 4 << 20),
    "m7": Board("mps2-an500", "mps2-an500", "Cortex-M7", 40.0, 4 << 20, 4 << 20),
    "m55": Board("mps3-an547", "mps3-an547", "Cortex-M55", 31.25, 8 << 20, 512 << 10),
    # the AN547 with the constants in DDR: counting only (no microcontroller has that flash)
    "m55-ddr": Board("mps3-an547-ddr", "mps3-an547", "Cortex-M55", 31.25, 192 << 20, 64 << 20),
}


def have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


def compare(got: list[str], want: list[str]) -> list[int]:
    """Indices of the images whose line differs (a missing line counts)."""
    bad = [i for i, w in enumerate(want) if i >= len(got) or got[i] != w]
    return bad + list(range(len(want), len(got)))


def run_hosted(
    directory: Path,
    name: str,
    images: np.ndarray,
    cflags: tuple[str, ...] = (*STRICT, "-O2"),
    cc: str = "cc",
    runner: tuple[str, ...] = (),
    tag: str = "host",
) -> list[str]:
    """Compile ``directory/name.c`` with the host driver and run it on ``images``; the lines."""
    exe = directory / f"{name}-{tag}"
    cmd = [cc, *cflags, f"-DMODEL={name}", f"-DMODEL_UPPER={name.upper()}", f"-I{directory}"]
    cmd += [str(HOST_MAIN), str(directory / f"{name}.c"), "-o", str(exe)]
    built = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if built.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {built.stderr[-3000:]}")
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "halt_on_error=1"}
    done = subprocess.run(
        [*runner, str(exe)],
        input=np.ascontiguousarray(images).tobytes(),
        capture_output=True,
        check=False,
        env=env,
        timeout=600,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{exe} exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}"
        )
    return done.stdout.decode().splitlines()


@dataclass(frozen=True)
class FirmwareRun:
    lines: list[str]  # class and scores per image, as expected_lines gives them
    instructions: list[float]  # per image, from SysTick (see the module docstring)
    stack_bytes: int  # high-water mark of the stack (painting)
    elf: Path


def build_firmware(
    directory: Path, name: str, images: np.ndarray, board: str, opt: str = "-O2", extra: str = ""
) -> Path:
    """``examples/cortex-m`` built for ``board`` with the model in ``directory`` and ``images``
    compiled in; the ELF file."""
    (directory / "inputs.h").write_text(inputs_header(images))
    build = directory / f"build-{board}-{name}"
    done = subprocess.run(
        [
            "make",
            "-s",
            "-f",
            str(EXAMPLE / "Makefile"),
            f"BOARD={BOARDS[board].layout}",
            f"MODEL={name}",
            f"MODEL_DIR={directory}",
            f"BUILD={build}",
            f"OPT={opt}",
            f"EXTRA_CFLAGS={extra}",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise AssertionError(f"building for {board} failed: {done.stderr[-3000:]}")
    return build / "firmware.elf"


def run_firmware(elf: Path, board: str, timeout: float = 900) -> FirmwareRun:
    """Run the firmware under QEMU with -icount shift=0; its output parsed."""
    b = BOARDS[board]
    done = subprocess.run(
        [
            "qemu-system-arm",
            "-M",
            b.machine,
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
            "-icount",
            "shift=0",
            "-kernel",
            str(elf),
        ],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    text = (done.stdout + done.stderr).decode(errors="replace")  # semihosting writes stderr
    if done.returncode != 0:
        raise AssertionError(f"{elf} on {b.machine} exited {done.returncode}: {text[-2000:]}")
    lines, counts, stack = [], [], -1
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "stack":
            stack = int(parts[1], 16)
        elif len(parts) >= 3 and all(len(p) in (4, 8) for p in parts):
            lines.append(" ".join(parts[:-1]))
            counts.append(int(parts[-1], 16) * b.instructions_per_tick)
    return FirmwareRun(lines, counts, stack, elf)


def section_sizes(elf: Path) -> dict[str, int]:
    """``arm-none-eabi-size -A``: bytes per section."""
    out = subprocess.run(
        ["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes
