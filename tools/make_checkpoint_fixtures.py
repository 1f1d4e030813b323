"""Build the training checkpoints in ``tests/fixtures/`` that pin the checkpoint → ``.bnn`` path.

``tests/training/test_checkpoint.py`` exports each fixture and compares the SHA-256 of the
``.bnn`` bytes with the digest recorded when the fixture was made, so that a change to the
checkpoint, export or model code that changes one bit of a deployed model fails a test. The
fixtures are real ``best.pt`` files of ``binarynet train`` runs, kept small (tens of KB):

- ``mnist_mlp_tiny.pt``: ``mnist-mlp`` 784 → 16 → 10, one epoch on the bundled MNIST sample
  (no preprocessor);
- ``cifar10_convnet_tiny.pt``: ``cifar10-convnet`` at 1/32 width (4-8-16 channels, two 16-unit
  dense layers), shift batch norm, behind the "pixels" preprocessor, one epoch on synthetic
  32×32 colour images (class-dependent colour, as in ``tests/training/test_trainer.py``).

Both train in float32 on one thread. The checkpoints are the reference, not the training run:
rebuilding them on another machine or torch version may give other weights, and then the digests
in the test must be recorded anew (``--digests`` prints them).

Usage::

    python tools/make_checkpoint_fixtures.py [--out tests/fixtures] [--digests]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
from pathlib import Path

import numpy as np

from binarynet.data import Split, Splits, mnist_sample

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def colour_splits(n_train: int = 120, size: int = 32, seed: int = 0) -> Splits:
    """Synthetic NHWC uint8 colour images whose mean colour depends on the label."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 64, (n, size, size, 3)) + 16 * labels[:, None, None, None]
        return Split(images.astype(np.uint8), labels.astype(np.int64))

    return Splits(split(n_train), split(40), split(40), name="synthetic-colour")


def _train(cfg, splits: Splits, run: Path) -> Path:
    from binarynet.training.trainer import Trainer

    Trainer(cfg, splits, run, progress=False).run()
    return run / "best.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--digests", action="store_true", help="print the SHA-256 of each fixture's export"
    )
    args = parser.parse_args()

    import torch

    from binarynet.export import export_checkpoint
    from binarynet.training.trainer import recipe_config

    torch.set_num_threads(1)
    common = dict(compute_dtype="float32", threads=1, epochs=1, seed=0)
    runs = {
        "mnist_mlp_tiny.pt": (
            recipe_config(
                None, model="mnist-mlp", model_kwargs={"hidden": 16, "depth": 1}, **common
            ),
            mnist_sample(),
        ),
        "cifar10_convnet_tiny.pt": (
            recipe_config(
                None,
                model="cifar10-convnet",
                model_kwargs={"width": 1 / 32, "fc_width": 16, "shift_bn": True},
                dataset="cifar10",
                preprocess="pixels",
                optimizer="adam",
                lr=1e-3,
                batch_size=40,
                **common,
            ),
            colour_splits(),
        ),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (cfg, splits) in runs.items():
            best = _train(cfg, splits, Path(tmp) / name)
            target = args.out / name
            shutil.copyfile(best, target)
            print(f"{target}: {target.stat().st_size} bytes")
            if args.digests:
                bnn = Path(tmp) / (name + ".bnn")
                export_checkpoint(target, bnn)
                print(f"  export sha256 {hashlib.sha256(bnn.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
