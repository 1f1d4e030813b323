#!/usr/bin/env python3
"""Write the seed corpus of ``fuzz/fuzz_bnn.py`` (generated, so no binary blobs in git).

Seeds: small valid models of every kind ``bnn_models.random_model`` makes (MLPs on flat,
grey and colour inputs, ConvNets with pools, thresholds of every kind), each in the fuzzer's
mode 0 (raw file) and mode 1 (file, checksum re-sealed), plus a few byte strings for mode 2
(structure-aware). About 60 files, 200 KB.

    python fuzz/make_corpus.py build/fuzz/corpus [--count 24]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bnn_models as bm


def seeds(count: int) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    kinds: dict[tuple, int] = {}
    seed = 0
    while len(kinds) < count and seed < 10_000:
        graph, tensors = bm.random_model(bm.RngChooser(np.random.default_rng(seed)), max_side=6)
        key = (graph["input"]["layout"], *(op["type"] for op in graph["ops"]))
        blob = bm.seal(graph, tensors)
        if key not in kinds and len(blob) < 8192:
            kinds[key] = seed
            out[f"model-{seed:04d}-raw"] = b"\x00" + blob
            out[f"model-{seed:04d}-sealed"] = b"\x01" + blob
        seed += 1
    rng = np.random.default_rng(0)
    for i in range(count // 2):
        noise = rng.integers(0, 256, 64 * (i + 1), np.uint8).tobytes()
        out[f"structured-{i:02d}"] = b"\x02" + noise
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--count", type=int, default=24, help="distinct model structures")
    args = parser.parse_args()
    args.directory.mkdir(parents=True, exist_ok=True)
    files = seeds(args.count)
    for name, blob in files.items():
        (args.directory / name).write_bytes(blob)
    total = sum(map(len, files.values()))
    print(f"{len(files)} seed files, {total} bytes in {args.directory}")


if __name__ == "__main__":
    main()
