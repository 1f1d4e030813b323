"""A trained checkpoint, exported and run by the engine, against the PyTorch model on a whole split.

    python benchmarks/export_exactness.py runs/cifar10/best.pt \
        --data-dir ../shared/data/cifar10-jpeg --cache-dir runs/cache
    python benchmarks/export_exactness.py runs/mlp/best.pt --data-dir ../shared/data/mnist

Exports the checkpoint to a ``.bnn`` file, then classifies every image of the split twice: with
the PyTorch model in evaluation mode (fed the preprocessed uint8 images, NCHW) and with the
torch-free engine (fed the raw uint8 images, NHWC; it applies the stored preprocessor itself).
Prints both error rates, the number of images whose predicted class differs, and whether the
scores are bit-identical; writes JSON to ``benchmarks/results/export_exactness_<dataset>.json``.
Exit status 1 if any prediction differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from binarynet.backends import engine
from binarynet.data import load_dataset
from binarynet.export import export_checkpoint
from binarynet.training.checkpoint import read_checkpoint
from binarynet.training.models import images_to_torch

RESULTS = Path(__file__).resolve().parent / "results"


@torch.inference_mode()
def torch_scores(model: torch.nn.Module, images: np.ndarray, batch: int = 500) -> np.ndarray:
    pre = getattr(model, "preprocessor", None)
    out = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        if pre is not None:
            chunk = pre.transform(chunk)
        out.append(model(images_to_torch(chunk)).numpy())
    return np.concatenate(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--split", choices=["test", "valid"], default="test")
    parser.add_argument(
        "--bnn", default=None, help="where to write the .bnn (default: a temp file)"
    )
    args = parser.parse_args()

    ckpt = read_checkpoint(args.checkpoint)  # read once: exported and run by torch
    cfg = ckpt.config
    split = getattr(
        load_dataset(cfg["dataset"], args.data_dir, cache_dir=args.cache_dir), args.split
    )
    with tempfile.TemporaryDirectory() as tmp:
        bnn = Path(args.bnn or Path(tmp) / "model.bnn")
        export_checkpoint(ckpt, bnn)
        deployed = engine.load(bnn)
        t0 = time.perf_counter()
        ref = torch_scores(ckpt.model, split.images)
        t1 = time.perf_counter()
        got = deployed.scores(split.images)
        t2 = time.perf_counter()
        size = bnn.stat().st_size
    labels = split.labels
    result = {
        "checkpoint": str(args.checkpoint),
        "dataset": cfg["dataset"],
        "split": args.split,
        "images": len(labels),
        "torch_error": float((ref.argmax(1) != labels).mean()),
        "engine_error": float((got.argmax(1) != labels).mean()),
        "predictions_differing": int((ref.argmax(1) != got.argmax(1)).sum()),
        "scores_bit_identical": bool(np.array_equal(ref, got)),
        "bnn_bytes": size,
        "torch_seconds": t1 - t0,
        "engine_seconds": t2 - t1,
    }
    print(
        f"{cfg['dataset']} {args.split}, {result['images']} images: torch error "
        f"{100 * result['torch_error']:.2f}% ({result['torch_seconds']:.1f} s), engine error "
        f"{100 * result['engine_error']:.2f}% ({result['engine_seconds']:.1f} s); "
        f"{result['predictions_differing']} predictions differ; scores bit-identical: "
        f"{result['scores_bit_identical']}; .bnn {size / 1e6:.2f} MB"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"export_exactness_{cfg['dataset']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return 1 if result["predictions_differing"] else 0


if __name__ == "__main__":
    sys.exit(main())
