"""Build and run generated C (:mod:`binarynet.backends.c`) on the targets we check it on.

Shared by ``tests/backends/c/test_c.py`` and ``benchmarks/mcu.py``; needs NumPy and binarynet only.

- host: ``cc`` with any flags (strict C99, sanitizers, -ffp-contract=fast), images on stdin;
- Cortex-M under ``qemu-system-arm`` (``examples/cortex-m``: its Makefile, start-up code and
  linker scripts, so the example a user copies is the one CI runs), output by semihosting;
- RV32 (RV32IMC, with or without Zbb) under ``qemu-system-riscv32 -M virt`` (``examples/riscv``:
  its start-up code and linker script with the Cortex-M example's ``main.c``), output on the UART;
- Armv8-A Linux: ``aarch64-linux-gnu-gcc -static`` under ``qemu-aarch64``.

Every target prints per image ``class score-bits...`` in hex (see ``tests/backends/c/host_main.c``
and ``examples/cortex-m/main.c``), compared with :func:`expected_lines` from the engine.

Instruction counts on Cortex-M: QEMU's ``-icount shift=0`` advances the virtual clock by exactly
1 ns per instruction executed, and SysTick on the processor clock ticks at the board's CPU
frequency in virtual time (25 MHz on the MPS2 boards, 32 MHz on the MPS3 AN547), so one tick is
40 (MPS2) or 31.25 (AN547) instructions. On RV32 the firmware reads the ``instret`` CSR
(instructions retired; under ``-icount shift=0`` QEMU counts them exactly). These are instruction
counts, not cycles: QEMU does not model pipelines, wait states or caches.
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
EXAMPLE_RISCV = ROOT / "examples" / "riscv"
HOST_MAIN = ROOT / "tests" / "backends" / "c" / "host_main.c"
STRICT = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")

sys.path.insert(0, str(EXAMPLE))
from make_inputs import expected_lines, images_for, inputs_header  # noqa: E402

from binarynet.graph import bnnfile  # noqa: E402
from binarynet.graph.values import InputSpec  # noqa: E402

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
    "wide_conv_model",
]


@dataclass(frozen=True)
class Board:
    layout: str  # the example's BOARD (its linker script, boards/<layout>.ld)
    machine: str  # qemu-system-arm -M
    core: str
    instructions_per_tick: float  # SysTick on the CPU clock under -icount shift=0
    const_bytes: int  # room for the model's constants (the linker script's CONST region)
    ram_bytes: int
    isa: str = "arm"  # "arm": examples/cortex-m, qemu-system-arm; "riscv": examples/riscv

    @property
    def tools(self) -> tuple[str, ...]:
        """The cross compiler and emulator this board needs."""
        if self.isa == "riscv":
            return ("riscv64-unknown-elf-gcc", "qemu-system-riscv32", "make")
        return ("arm-none-eabi-gcc", "qemu-system-arm", "make")


BOARDS = {
    "m3": Board("mps2-an385", "mps2-an385", "Cortex-M3", 40.0, 4 << 20, 4 << 20),
    "m4": Board("mps2-an386", "mps2-an386", "Cortex-M4F", 40.0, 4 << 20, 4 << 20),
    "m7": Board("mps2-an500", "mps2-an500", "Cortex-M7", 40.0, 4 << 20, 4 << 20),
    "m55": Board("mps3-an547", "mps3-an547", "Cortex-M55", 31.25, 8 << 20, 512 << 10),
    # the AN547 with the constants in DDR: counting only (no microcontroller has that flash)
    "m55-ddr": Board("mps3-an547-ddr", "mps3-an547", "Cortex-M55", 31.25, 192 << 20, 64 << 20),
    # QEMU's virt board with 4 MiB as flash and 4 MiB as RAM (examples/riscv/virt.ld); layout is
    # the -march; the count is instret (1 per instruction)
    "rv32": Board("rv32imc", "virt", "RV32IMC", 1.0, 4 << 20, 4 << 20, "riscv"),
    "rv32-zbb": Board("rv32imc_zbb", "virt", "RV32IMC+Zbb", 1.0, 4 << 20, 4 << 20, "riscv"),
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
    stages: list[list[float]]  # per image, per stage: instructions of that stage (-DBNR_STAGE_HOOK)


def build_firmware(
    directory: Path, name: str, images: np.ndarray, board: str, opt: str = "-O2", extra: str = ""
) -> Path:
    """``examples/cortex-m`` built for ``board`` with the model in ``directory`` and ``images``
    compiled in; the ELF file."""
    (directory / "inputs.h").write_text(inputs_header(images))
    build = directory / f"build-{board}-{name}"
    b = BOARDS[board]
    if b.isa == "riscv":
        where = [str(EXAMPLE_RISCV / "Makefile"), f"MARCH={b.layout}"]
    else:
        where = [str(EXAMPLE / "Makefile"), f"BOARD={b.layout}"]
    done = subprocess.run(
        [
            "make",
            "-s",
            "-f",
            *where,
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
    if b.isa == "riscv":
        qemu = ["qemu-system-riscv32", "-M", b.machine, "-bios", "none", "-nographic"]
    else:
        qemu = ["qemu-system-arm", "-M", b.machine, "-nographic", "-semihosting-config"]
        qemu.append("enable=on,target=native")
    done = subprocess.run(
        [*qemu, "-icount", "shift=0", "-kernel", str(elf)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    text = (done.stdout + done.stderr).decode(errors="replace")  # semihosting writes stderr
    if done.returncode != 0:
        raise AssertionError(f"{elf} on {b.machine} exited {done.returncode}: {text[-2000:]}")
    lines, counts, stack, stages = [], [], -1, []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "stack":
            stack = int(parts[1], 16)
        elif parts and parts[0] == "stages":
            ends = [int(p, 16) * b.instructions_per_tick for p in parts[1:]]
            starts = [0.0, *ends[:-1]] if ends else []
            stages.append([e - s for s, e in zip(starts, ends, strict=True)])
        elif len(parts) >= 3 and all(len(p) in (4, 8) for p in parts):
            lines.append(" ".join(parts[:-1]))
            counts.append(int(parts[-1], 16) * b.instructions_per_tick)
    return FirmwareRun(lines, counts, stack, elf, stages)


def section_sizes(elf: Path, board: str = "m4") -> dict[str, int]:
    """``arm-none-eabi-size -A`` (``riscv64-unknown-elf-size``): bytes per section."""
    size = "riscv64-unknown-elf-size" if BOARDS[board].isa == "riscv" else "arm-none-eabi-size"
    out = subprocess.run([size, "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def _packed(negative: np.ndarray) -> np.ndarray:
    """bool [..., K] (True = −1) → uint64 [..., ceil(K/64)], element k in bit k % 64."""
    *lead, k = negative.shape
    bits = np.zeros((*lead, -(-k // 64) * 64), np.uint8)
    bits[..., :k] = negative
    return np.packbits(bits, axis=-1, bitorder="little").view("<u8").reshape(*lead, -1)


def wide_conv_model(
    path: Path, side: int, repeats: int, channels: int = 128, seed: int = 0
) -> bnnfile.BNNFile:
    """A ConvNet of the size that binary kernels are measured on: uint8 [side, side, 3] → 3×3
    conv 3→C, pad 1 → ``repeats`` × (binary 3×3 conv C→C, pad 1) → dense → 10 scores, random ±1
    weights (half −1) and up-set thresholds near the middle of each layer's range, so that the
    activations stay mixed. The binary conv alone costs the difference between ``repeats`` = 2
    and 1."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    ops: list[dict] = []

    def conv(n: int, weight: np.ndarray) -> None:
        tensors[f"w{n}"] = _packed(weight)
        ops.append({"type": "conv2d", "out_channels": channels, "kernel_size": [3, 3],
                    "stride": [1, 1], "padding": [1, 1], "weight": f"w{n}"})  # fmt: skip

    def threshold(n: int, bound: int) -> None:
        tensors[f"lo{n}"] = rng.integers(-bound, bound + 1, channels).astype(np.int32)
        tensors[f"hi{n}"] = np.full(channels, 2**31 - 1, np.int32)
        ops.append({"type": "threshold", "lo": f"lo{n}", "hi": f"hi{n}"})

    conv(0, rng.random((channels, 27)) < 0.5)
    threshold(0, 27 * 16)
    for n in range(1, repeats + 1):
        conv(n, rng.random((channels, 3, 3, channels)) < 0.5)
        threshold(n, 3 * channels // 4)
    tensors["wd"] = _packed(rng.random((10, side, side, channels)) < 0.5)
    ops.append({"type": "dense", "out_features": 10, "weight": "wd"})
    tensors["scale"] = np.full(10, 0.5, np.float32)
    tensors["shift"] = np.linspace(-1, 1, 10).astype(np.float32)
    ops.append({"type": "scores", "input_scale": 1.0, "bias": None, "scale": "scale",
                "shift": "shift"})  # fmt: skip
    graph = {
        "format": bnnfile.FORMAT,
        "version": bnnfile.VERSION,
        "input": InputSpec((side, side, 3), 128, 2.0**-7).to_json(),
        "preprocess": None,
        "num_classes": 10,
        "ops": ops,
        "provenance": {"model": f"conv{channels}-{side}x{side}-x{repeats}"},
    }
    bnnfile.save(path, graph, tensors)
    return bnnfile.load(path)
