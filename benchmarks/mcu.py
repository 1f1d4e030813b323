"""Binarized networks on microcontrollers: flash, RAM and instructions per inference of the C
export (binarynet.backends.c) on Cortex-M4/M7/M55 under QEMU, beside straightforward float32 and
int8 C of the same networks (benchmarks/mcu_baselines.py) built with the same flags.

    python benchmarks/mcu.py [--models mlp256,mlp2048,convnet] [--boards m4,m7,m55] [--out F]

Models: the shipped MNIST MLP 784-256-256-10 (binarynet.pretrained, trained), the paper's MNIST
MLP 784-2048×3-10 (Torch7 code) and CIFAR-10 ConvNet (random weights and batch-norm statistics:
sizes do not depend on the values, instruction counts only through the thresholds' branches — with
benchmarks/batchnorm.py's statistics instead, 7 239 460 against 7 233 360 and 384 784 360 against
384 448 160 on the M4, +0.1 % — and the exactness check not at all).

Boards: QEMU's MPS2 AN386 (Cortex-M4F) and AN500 (Cortex-M7) with 4 MiB of code memory, the
MPS3 AN547 (Cortex-M55) with the weights in its 8 MiB QSPI flash window; an implementation that
fits none of them (the float32 and int8 paper networks: 10-54 MiB of weights) is also run on the
AN547 with its weights in the board's DDR, to count its instructions; no microcontroller has that
much flash, and the table says so.

Per (model, implementation, core): flash = .text + .rodata + .data of the firmware less the test
images compiled in; RAM = .data + .bss (the model's arena is a static buffer there) + the stack's
high-water mark (the start-up code paints the stack; main.c reads it back after the runs);
instructions per inference from SysTick under ``qemu-system-arm -icount shift=0``
(tools/csource_targets.py explains the method). QEMU counts instructions, not cycles: a
Cortex-M7 issues up to two per cycle, flash wait states and caches are not modelled. Each run
also checks classes and scores against the engine bit for bit. Also measured: the three portable
popcounts on Cortex-M4 (SWAR, byte table, libgcc's __popcountsi2).

Prints tables and writes JSON (default benchmarks/results/mcu.json). Needs torch (to build the
two random paper models), arm-none-eabi-gcc, qemu-system-arm.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import csource_targets as ct  # noqa: E402

from binarynet import pretrained  # noqa: E402
from binarynet.backends import c as csource  # noqa: E402
from binarynet.backends import engine  # noqa: E402
from binarynet.graph import bnnfile  # noqa: E402
from mcu_baselines import emit_baseline  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
IMAGES = 2

# Common parts: (name, core, flash bytes, RAM bytes), from the vendors' datasheets.
PARTS = [
    ("STM32F103C8", "Cortex-M3", 64 << 10, 20 << 10),
    ("STM32L432KC", "Cortex-M4F", 256 << 10, 64 << 10),
    ("nRF52840", "Cortex-M4F", 1 << 20, 256 << 10),
    ("STM32F767ZI", "Cortex-M7", 2 << 20, 512 << 10),
    ("STM32H743ZI", "Cortex-M7", 2 << 20, 1 << 20),
]


def paper_model(kind: str, path: Path) -> None:
    import torch

    from binarynet import export
    from binarynet.training import models

    torch.manual_seed(0)
    if kind == "mlp2048":
        model, shape = models.mnist_mlp(hidden=2048, depth=3), (28, 28)
        name = "mnist-mlp"
    else:
        model, shape = models.cifar10_convnet(), (3, 32, 32)
        name = "cifar10-convnet"
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 4)
                m.running_var.copy_(torch.rand(n, generator=g) * 4 + 0.5)
    export.export(model, path, input_shape=shape, model=name)


def load_models(names: list[str], tmp: Path) -> dict[str, bnnfile.BNNFile]:
    out = {}
    for name in names:
        if name == "mlp256":
            out[name] = bnnfile.load(pretrained.path("mnist-mlp-256"))
        else:
            path = tmp / f"{name}.bnn"
            paper_model(name, path)
            out[name] = bnnfile.load(path)
    return out


def macs(bnn: bnnfile.BNNFile) -> dict[str, int]:
    total: dict[str, int] = {}
    for i, op in enumerate(bnn.graph.ops):
        cost = op.cost(bnn.values[i], bnn.values[i + 1], bnn.tensors)
        for kind, n in cost.macs.items():
            total[kind] = total.get(kind, 0) + n
    return total


def sources(bnn: bnnfile.BNNFile, impl: str) -> tuple[dict[str, str], int, int]:
    """The two files, the constant bytes and the arena bytes of one implementation."""
    if impl == "binary":
        src = csource.emit_c(bnn, "net")
        return src.files, src.const_bytes, src.arena_bytes
    header, source, const, arena = emit_baseline(bnn, impl, "net")
    return {"net.h": header, "net.c": source}, const, arena


def measure(bnn: bnnfile.BNNFile, impl: str, board: str, directory: Path, extra: str = "") -> dict:
    model = engine.Model(bnn)
    images = ct.images_for(model, IMAGES, seed=0)
    files, const, arena = sources(bnn, impl)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    b = ct.BOARDS[board]
    row: dict = {
        "impl": impl,
        "board": board,
        "core": b.core,
        "const_bytes": const,
        "arena_bytes": arena,
    }
    if const > b.const_bytes or arena > b.ram_bytes:
        row["fits_qemu_board"] = False
        row["note"] = (
            f"does not fit: constants {_kib(const)}, arena {_kib(arena)}; the {b.layout} "
            f"layout has {_kib(b.const_bytes)} for constants, {_kib(b.ram_bytes)} of RAM"
        )
        return row
    t0 = time.perf_counter()
    elf = ct.build_firmware(directory, "net", images, board, extra=extra)
    run = ct.run_firmware(elf, board, timeout=3600)
    sizes = ct.section_sizes(elf)
    want = ct.expected_lines(model, images)
    flash = sum(sizes.get(k, 0) for k in (".text", ".rodata", ".ARM.exidx", ".data"))
    flash -= images.size  # the test images compiled in (inputs.h) are not the model's
    ram = sizes.get(".data", 0) + sizes.get(".bss", 0) + run.stack_bytes
    row.update(
        fits_qemu_board=True,
        exact=ct.compare(run.lines, want) == [],
        flash_bytes=flash,
        ram_bytes=ram,
        stack_bytes=run.stack_bytes,
        bss_bytes=sizes.get(".bss", 0),
        instructions=float(np.mean(run.instructions)),
        qemu_seconds=time.perf_counter() - t0,
    )
    return row


def fits(flash: int, ram: int) -> list[str]:
    return [name for name, _, f, r in PARTS if flash <= f and ram <= r]


def _kib(n: float) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1 << 20 else f"{n / 2**20:,.2f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp256,mlp2048,convnet")
    parser.add_argument("--boards", default="m4,m7,m55")
    parser.add_argument("--impls", default="binary,float32,int8")
    parser.add_argument("--no-popcount", action="store_true", help="skip the popcount variants")
    parser.add_argument("--out", type=Path, default=RESULTS / "mcu.json")
    args = parser.parse_args()
    if not ct.have("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        print("error: needs arm-none-eabi-gcc, qemu-system-arm and make", file=sys.stderr)
        return 2
    results: dict = {"method": __doc__, "models": {}, "popcount": [], "parts": PARTS}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        bnns = load_models(args.models.split(","), tmp)
        for name, bnn in bnns.items():
            m = macs(bnn)
            entry: dict = {"macs": m, "rows": []}
            results["models"][name] = entry
            print(f"\n{name}: {m.get('binary', 0):,} binary MACs, {m.get('int8', 0):,} 8-bit MACs")
            print(
                f"  {'impl':8} {'core':10} {'flash':>12} {'RAM':>11} {'stack':>9} "
                f"{'instructions':>14} {'MACs/instr':>10}  exact  fits"
            )
            for impl in args.impls.split(","):
                boards = args.boards.split(",")
                for board in boards:
                    row = measure(bnn, impl, board, tmp / f"{name}-{impl}-{board}")
                    entry["rows"].append(row)
                    if not row["fits_qemu_board"]:
                        print(f"  {impl:8} {row['core']:10} {row['note']}")
                        if board == boards[-1] and not any(
                            r["fits_qemu_board"] for r in entry["rows"] if r["impl"] == impl
                        ):  # count its instructions anyway, with the weights in DDR
                            boards.append("m55-ddr")
                        continue
                    per = (m.get("binary", 0) + m.get("int8", 0)) / row["instructions"]
                    row["macs_per_instruction"] = per
                    row["fits_parts"] = fits(row["flash_bytes"], row["ram_bytes"])
                    core = row["core"] + (" (DDR)" if board == "m55-ddr" else "")
                    print(
                        f"  {impl:8} {core:10} {_kib(row['flash_bytes']):>12} "
                        f"{_kib(row['ram_bytes']):>11} {row['stack_bytes']:>7} B "
                        f"{row['instructions']:>14,.0f} {per:>10.2f}  "
                        f"{'yes' if row['exact'] else 'NO':5}  {', '.join(row['fits_parts'])}",
                        flush=True,
                    )
        if not args.no_popcount and "mlp256" in bnns:
            print("\npopcount on Cortex-M4 (mlp256, binary C):")
            for variant in ("SWAR", "TABLE", "BUILTIN"):
                row = measure(
                    bnns["mlp256"],
                    "binary",
                    "m4",
                    tmp / f"pop-{variant}",
                    extra=f"-DBNR_POPCOUNT_{variant}=1",
                )
                row["variant"] = variant
                results["popcount"].append(row)
                print(
                    f"  {variant:8} {row['instructions']:>12,.0f} instructions, flash "
                    f"{_kib(row['flash_bytes'])}, exact {row['exact']}",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
