"""Binarized networks on microcontrollers: flash, RAM and instructions per inference of the C
export (binarynet.backends.c) on Cortex-M4/M7/M55 under QEMU, beside straightforward float32 and
int8 C of the same networks (benchmarks/mcu_baselines.py) built with the same flags; and the
binary kernels layer by layer on Cortex-M4/M7/M55 and RV32 (with and without Zbb).

    python benchmarks/mcu.py [--models mlp256,mlp2048,convnet] [--boards m4,m7,m55] [--out F]
    python benchmarks/mcu.py --part layers [--baseline-rev REV]     # the kernels alone

Layers (``--part layers``): the 3×3 binary conv 128→128, pad 1, on 16×16 and 32×32 (37.7 M and
151 M binary MACs), the layer alone = the network of tools/csource_targets.wide_conv_model with
the layer twice minus the same network with it once; and the shipped MNIST MLP stage by stage
(-DBNR_STAGE_HOOK: the counter read after each stage). On Cortex-M4/M7/M55 (SysTick under
-icount shift=0) and RV32IMC / RV32IMC + Zbb (instret under qemu-system-riscv32 -M virt
-icount shift=0), all with GCC 12 -O2. ``--baseline-rev`` builds the same C with the runtime of
another git revision (e.g. the parent of a kernel change), side by side in the same run.

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
import subprocess
import sys
import tempfile
import time
from importlib import resources
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


# --------------------------------------------------------------------------------------------
# The kernels layer by layer
# --------------------------------------------------------------------------------------------

LAYER_BOARDS = "m4,m7,m55,rv32,rv32-zbb"
CONV = (128, 3)  # channels, kernel


def _runtime_at(rev: str) -> str:
    """runtime.c as of git revision ``rev`` (with the stage hook's no-op where it has none)."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/binarynet/backends/c/runtime.c"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "BNR_STAGE_DONE" not in text:  # the stage hook, as the runtime of this tree has it
        hook = "#if defined(BNR_STAGE_HOOK)\nvoid BNR_STAGE_HOOK(int stage);\n"
        hook += "#define BNR_STAGE_DONE(k) BNR_STAGE_HOOK(k)\n#else\n"
        text = hook + "#define BNR_STAGE_DONE(k) ((void)0)\n#endif\n" + text
    return text


def _write_c(bnn: bnnfile.BNNFile, directory: Path, runtime: str | None) -> None:
    """NAME.h / NAME.c of ``bnn`` as ``net``, with another runtime pasted in if given."""
    src = csource.emit_c(bnn, "net")
    ours = resources.files("binarynet.backends.c").joinpath("runtime.c").read_text("utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in src.files.items():
        if runtime is not None and name.endswith(".c"):
            assert ours in text
            text = text.replace(ours, runtime)
        (directory / name).write_text(text)


def _run(bnn: bnnfile.BNNFile, board: str, directory: Path, runtime: str | None, extra: str = ""):
    model = engine.Model(bnn)
    images = ct.images_for(model, 1, seed=0)
    _write_c(bnn, directory, runtime)
    elf = ct.build_firmware(directory, "net", images, board, extra=extra)
    run = ct.run_firmware(elf, board, timeout=3600)
    sizes = ct.section_sizes(elf, board)
    flash = sum(sizes.get(k, 0) for k in (".text", ".rodata", ".ARM.exidx", ".data")) - images.size
    ram = sizes.get(".data", 0) + sizes.get(".bss", 0) + run.stack_bytes
    exact = ct.compare(run.lines, ct.expected_lines(model, images)) == []
    return run, flash, ram, exact


def conv_layer(board: str, side: int, tmp: Path, runtime: str | None, tag: str) -> dict:
    """The binary conv alone: instructions of the network with it twice minus once."""
    counts, sizes, exact = [], [], True
    for repeats in (1, 2):
        d = tmp / f"conv{side}-{repeats}-{board}-{tag}"
        bnn = ct.wide_conv_model(d.with_suffix(".bnn"), side, repeats, CONV[0])
        run, flash, ram, ok = _run(bnn, board, d, runtime)
        counts.append(run.instructions[0])
        sizes.append((flash, ram))
        exact = exact and ok
    macs = side * side * CONV[0] * CONV[0] * CONV[1] * CONV[1]
    layer = counts[1] - counts[0]
    return {
        "board": board,
        "core": ct.BOARDS[board].core,
        "side": side,
        "runtime": tag,
        "binary_macs": macs,
        "instructions": layer,
        "macs_per_instruction": macs / layer,
        "layer_flash_bytes": sizes[1][0] - sizes[0][0],
        "network_flash_bytes": sizes[0][0],
        "network_ram_bytes": sizes[0][1],
        "exact": exact,
    }


def mlp_stages(bnn: bnnfile.BNNFile, board: str, tmp: Path, runtime: str | None, tag: str) -> dict:
    """The shipped MLP: total instructions, then stage by stage (a build with the hook)."""
    d = tmp / f"mlp-{board}-{tag}"
    run, flash, ram, exact = _run(bnn, board, d, runtime)
    staged, _, _, exact_staged = _run(
        bnn, board, d, runtime, extra="-DBNR_STAGE_HOOK=board_stage_done"
    )
    return {
        "board": board,
        "core": ct.BOARDS[board].core,
        "runtime": tag,
        "instructions": run.instructions[0],
        "stages": staged.stages[0],
        "flash_bytes": flash,
        "ram_bytes": ram,
        "exact": exact and exact_staged,
    }


def layers(boards: list[str], sides: list[int], baseline_rev: str | None) -> dict:
    runtimes: list[tuple[str, str | None]] = [("this", None)]
    if baseline_rev:
        runtimes.insert(0, (baseline_rev, _runtime_at(baseline_rev)))
    out: dict = {"conv": [], "mlp": []}
    shipped = bnnfile.load(pretrained.path("mnist-mlp-256"))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        print(f"\nbinary 3×3 conv {CONV[0]}→{CONV[0]}, pad 1, the layer alone (instructions)")
        print(f"  {'core':12} {'side':>5} {'runtime':>10} {'instructions':>14} {'MACs/instr':>10}"
              f" {'layer flash':>12} {'net RAM':>9}  exact")  # fmt: skip
        for board in boards:
            for side in sides:
                for tag, runtime in runtimes:
                    row = conv_layer(board, side, tmp, runtime, tag)
                    out["conv"].append(row)
                    print(
                        f"  {row['core']:12} {side:>5} {tag:>10} {row['instructions']:>14,.0f} "
                        f"{row['macs_per_instruction']:>10.2f} "
                        f"{_kib(row['layer_flash_bytes']):>12} {_kib(row['network_ram_bytes']):>9}"
                        f"  {'yes' if row['exact'] else 'NO'}",
                        flush=True,
                    )
        print("\nshipped MNIST MLP 784-256-256-10, stage by stage (instructions)")
        for board in boards:
            for tag, runtime in runtimes:
                row = mlp_stages(shipped, board, tmp, runtime, tag)
                out["mlp"].append(row)
                stages = " + ".join(f"{s:,.0f}" for s in row["stages"])
                print(
                    f"  {row['core']:12} {tag:>10} {row['instructions']:>10,.0f} = {stages}  "
                    f"flash {_kib(row['flash_bytes'])}, RAM {_kib(row['ram_bytes'])}, "
                    f"exact {'yes' if row['exact'] else 'NO'}",
                    flush=True,
                )
    return out


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
    parser.add_argument("--out", type=Path, default=None, help="JSON (default: results/mcu.json, "
                        "results/mcu_layers.json with --part layers)")  # fmt: skip
    parser.add_argument("--part", choices=("networks", "layers"), default="networks")
    parser.add_argument("--layer-boards", default=LAYER_BOARDS)
    parser.add_argument("--sides", default="16,32", help="the conv's input sides (--part layers)")
    parser.add_argument(
        "--baseline-rev", default=None, help="also the runtime of this git revision"
    )
    args = parser.parse_args()
    if args.part == "layers":
        boards = args.layer_boards.split(",")
        missing = sorted({t for b in boards for t in ct.BOARDS[b].tools if not ct.have(t)})
        if missing:
            print(f"error: needs {', '.join(missing)}", file=sys.stderr)
            return 2
        sides = [int(v) for v in args.sides.split(",")]
        found = {"method": __doc__, **layers(boards, sides, args.baseline_rev)}
        out = args.out or RESULTS / "mcu_layers.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(found, indent=1))
        print(f"\nwrote {out}")
        return 0
    args.out = args.out or RESULTS / "mcu.json"
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
