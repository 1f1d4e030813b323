"""The export's cost: capture + pattern matching, and its self-check (torch and the reference
interpreter on the probe inputs), for the paper's MNIST MLP 784-4096×3-10 and CIFAR-10 ConvNet.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/export_selfcheck.py [--probes 256]

Prints a line per model and writes benchmarks/results/export_selfcheck.json: wall seconds and CPU
seconds of the process (one thread each, as above, so that CPU seconds measure the work even
on a busy machine). Fresh (untrained) models: the cost does not depend on the weights.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from binarynet.export import build_graph
from binarynet.export.selfcheck import BORDER_VALUES, probe_inputs, self_check
from binarynet.graph import bnnfile
from binarynet.graph.reference import reference
from binarynet.training.models import cifar10_convnet, mnist_mlp

OUT = Path(__file__).resolve().parent / "results" / "export_selfcheck.json"


@contextlib.contextmanager
def timed(row: dict, key: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    row[f"{key}_wall_s"] = time.perf_counter() - wall
    row[f"{key}_cpu_s"] = time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = []
    for name, model, shape in (
        ("mnist_mlp(4096, 3)", mnist_mlp(4096, 3).eval(), (28, 28)),
        ("cifar10_convnet()", cifar10_convnet().eval(), (3, 32, 32)),
    ):
        build_graph(model, shape, self_check=False)  # warm-up: torch.export's first call
        row: dict = {"model": name, "probes": args.probes + len(BORDER_VALUES)}
        with timed(row, "capture_match"):
            graph, tensors = build_graph(model, shape, self_check=False)
        x = probe_inputs(shape, args.probes)
        xe = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x
        with timed(row, "torch"), torch.no_grad():
            model(torch.from_numpy(x))
        with timed(row, "reference"):
            reference(bnnfile.graph_to_json(graph), tensors, xe)
        with timed(row, "self_check"):
            self_check(model, graph, tensors, shape, args.probes)
        rows.append(row)
        print(
            f"{name:20} {row['probes']} probes: capture + match {row['capture_match_cpu_s']:.2f} "
            f"CPU s; self-check {row['self_check_cpu_s']:.2f} CPU s "
            f"({row['self_check_wall_s']:.2f} wall s) = torch {row['torch_cpu_s']:.2f} + "
            f"reference {row['reference_cpu_s']:.2f}",
            flush=True,
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    info = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    OUT.write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
