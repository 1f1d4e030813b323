"""Instruction count of the NEON binary GEMM's inner loop, from the compiler's assembly.

    python tools/neon_inner_loop.py [--cxx aarch64-linux-gnu-g++] [--json]

Compiles csrc/bgemm/neon.cc with ``-O3 -S`` for aarch64, finds every innermost loop (a label and
the backward branch to it, with no other label between) that contains CNT instructions, and
prints, for the distinct loop bodies, the instruction mix and the binary multiply-accumulates per
instruction: each CNT counts the bits of one 128-bit XOR (or AND), i.e. 128 binary MACs, so a
loop with c CNTs does 128·c MACs per iteration. "NEON arithmetic" counts the vector data-processing
instructions (EOR/AND, CNT, UADALP/ADDP/UADDLP/ADD on vectors, ...), as daBNN's and LCE's loop
counts do; loads and the loop's own SUBS/CMP/B.NE are listed apart. docs/arm.md compares the
result with Larq Compute Engine's and daBNN's loops. Exit status 77 when the cross compiler is
missing.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOADS = {"ld1", "ld1r", "ld2", "ld3", "ld4", "ldp", "ldr", "ldur", "prfm"}
SCALAR = {"add", "sub", "subs", "adds", "cmp", "cmn", "b", "bne", "b.ne", "bhi", "bcc", "bcs"}
SCALAR |= {"beq", "bls", "cbz", "cbnz", "mov", "csel", "lsl"}


def assembly(cxx: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "neon.s"
        cmd = [cxx, "-std=c++17", "-O3", "-S", "-I", str(ROOT / "csrc")]
        cmd += ["-DBINARYNET_ARM_KERNELS=1", str(ROOT / "csrc/bgemm/neon.cc"), "-o", str(out)]
        subprocess.run(cmd, check=True)
        return out.read_text()


def inner_loops(asm: str) -> list[list[tuple[str, str]]]:
    """Bodies (mnemonic, operands) of the innermost loops that contain CNT."""
    lines = asm.splitlines()
    labels = {}
    for i, line in enumerate(lines):
        m = re.match(r"^(\.L\w+):", line)
        if m:
            labels[m.group(1)] = i
    loops = []
    for i, line in enumerate(lines):
        m = re.match(r"^\s+(b(?:\.\w+)?|b\w\w|cbn?z)\s+(?:\w+,\s*)?(\.L\w+)\s*$", line)
        if not m or m.group(2) not in labels or labels[m.group(2)] >= i:
            continue
        start = labels[m.group(2)]
        body_lines = lines[start + 1 : i + 1]
        if any(re.match(r"^\.L\w+:", x) for x in body_lines):
            continue  # not innermost
        body = []
        for x in body_lines:
            x = x.strip()
            if not x or x.startswith((".", "//", "#")):  # directives, comments, #APP markers
                continue
            mnemonic, _, ops = x.replace("\t", " ").partition(" ")
            body.append((mnemonic, ops.strip()))
        if any(mn == "cnt" for mn, _ in body):
            loops.append(body)
    return loops


def classify(body: list[tuple[str, str]]) -> dict:
    mix = Counter(mn for mn, _ in body)
    loads = sum(n for mn, n in mix.items() if mn in LOADS)
    scalar = 0
    for mn, ops in body:
        if mn in LOADS:
            continue
        if mn in SCALAR and not re.search(r"\bv\d+\.", ops):
            scalar += 1
    arith = len(body) - loads - scalar
    macs = 128 * mix["cnt"]
    return {
        "instructions": len(body),
        "mix": dict(sorted(mix.items(), key=lambda kv: -kv[1])),
        "neon_arithmetic": arith,
        "loads": loads,
        "loop_control": scalar,
        "binary_macs": macs,
        "macs_per_arithmetic": macs / arith,
        "macs_per_instruction": macs / len(body),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cxx", default="aarch64-linux-gnu-g++")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if shutil.which(args.cxx) is None:
        print(f"neon_inner_loop: {args.cxx} not found", file=sys.stderr)
        return 77
    seen: dict[str, dict] = {}
    for body in inner_loops(assembly(args.cxx)):
        key = json.dumps(sorted(Counter(mn for mn, _ in body).items()))
        if key not in seen:
            seen[key] = {**classify(body), "loops": 0, "text": [f"{a} {b}" for a, b in body]}
        seen[key]["loops"] += 1
    results = sorted(seen.values(), key=lambda r: -r["binary_macs"])
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(
            f"{r['loops']} loop(s): {r['instructions']} instructions per iteration = "
            f"{r['neon_arithmetic']} NEON arithmetic + {r['loads']} loads + "
            f"{r['loop_control']} loop control, {r['binary_macs']} binary MACs: "
            f"{r['macs_per_arithmetic']:.1f} MACs per arithmetic instruction, "
            f"{r['macs_per_instruction']:.1f} per instruction"
        )
        print("   mix: " + ", ".join(f"{mn} {n}" for mn, n in r["mix"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
