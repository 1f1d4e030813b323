"""The engine's bit-exactness against torch, carried to a machine without torch.

    python tools/engine_golden.py make DIR [--only NAME ...]   # here, with torch: models,
                                                               # inputs, torch scores
    python tools/engine_golden.py check DIR    # there (e.g. arm64 under QEMU), torch-free

``make`` exports a few small models of every layer kind the engine runs (the MNIST MLP, fresh
and trained a few steps; the CIFAR-10 ConvNet at 1/8 width; a ConvNet with odd spatial sizes,
stride 2 and padding) to ``DIR/<name>.bnn``, with random batch-norm statistics, and saves uint8
inputs — random images plus all-0 / all-255 ones — and the torch model's scores (float32, eval
mode) to ``DIR/<name>.npz``. ``check`` loads each ``.bnn`` on the engine with every kernel
variant the CPU has and compares ``scores`` with torch's bit for bit (``np.array_equal`` on the
float32 arrays), and the predictions with ``argmax``. Exit status 0 iff all match.
``tools/test_arm64.sh`` runs ``check`` under ``qemu-aarch64`` (``make test-arm64``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

GOLDEN_MODELS = ("mlp", "mlp3", "cifar", "odd")


def make(out: Path, only: list[str] | None = None) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from batchnorm import randomise_batchnorm_
    from binarynet.export import export
    from binarynet.training.models import cifar10_convnet, mnist_mlp
    from binarynet.training.nn import (
        BinaryActivation,
        BinaryConv2d,
        BinaryLinear,
        ExactBatchNorm1d,
        ExactBatchNorm2d,
        FixedPointInput,
    )

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    gen = np.random.default_rng(0)

    def odd_convnet() -> torch.nn.Sequential:
        # tests/backends/engine/test_engine.py's odd_convnet: 3×15×13 inputs, 70 channels (two
        # words), bias, pools on integers and on bits, a strided non-square conv, a 1×1 conv, 7
        # classes.
        nn = torch.nn
        return nn.Sequential(
            FixedPointInput(),
            BinaryConv2d(3, 70, 3, padding=1, bias=True, binarize_input=False),
            nn.MaxPool2d(2),
            ExactBatchNorm2d(70),
            BinaryActivation(),
            BinaryConv2d(70, 5, (3, 2), stride=(2, 1), padding=(1, 0), binarize_input=False),
            ExactBatchNorm2d(5),
            BinaryActivation(),
            BinaryConv2d(5, 65, 1, binarize_input=True),
            nn.MaxPool2d((2, 3), stride=(1, 2)),
            ExactBatchNorm2d(65),
            BinaryActivation(),
            nn.Flatten(),
            BinaryLinear(390, 33, bias=True, binarize_input=False),
            ExactBatchNorm1d(33),
            BinaryActivation(),
            BinaryLinear(33, 7, binarize_input=False),
            ExactBatchNorm1d(7),
        )

    cases = {
        "mlp": (randomise_batchnorm_(mnist_mlp(96, 2), 1), (28, 28)),
        "mlp3": (randomise_batchnorm_(mnist_mlp(200, 3), 2), (28, 28)),
        "cifar": (randomise_batchnorm_(cifar10_convnet(0.125, fc_width=96), 3), (3, 32, 32)),
        "odd": (randomise_batchnorm_(odd_convnet(), 4), (3, 15, 13)),
    }
    for name, (model, shape) in cases.items():
        if only and name not in only:
            continue
        model.eval()
        path = out / f"{name}.bnn"
        export(model, path, input_shape=shape, model=name)
        n = 30 if len(shape) == 2 else 12
        x = gen.integers(0, 256, (n, *shape), dtype=np.uint8)
        extremes = [np.zeros((1, *shape), np.uint8), np.full((1, *shape), 255, np.uint8)]
        x = np.concatenate([x, *extremes])
        xt = torch.from_numpy(x)
        # The engine takes images channels last (NHWC); the MLP's [N, 28, 28] as they are.
        x_engine = x if len(shape) == 2 else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        with torch.inference_mode():
            scores = model(xt).numpy()
        np.savez(out / f"{name}.npz", x=x_engine, scores=scores)
        print(f"{path}: input {list(x_engine.shape)}, scores {list(scores.shape)}")


def check(directory: Path) -> int:
    from binarynet.backends import engine

    files = sorted(directory.glob("*.bnn"))
    if not files:
        print(f"engine_golden: no .bnn files in {directory}", file=sys.stderr)
        return 2
    failed = 0
    kernels = engine.available_kernels()
    for path in files:
        ref = np.load(path.with_suffix(".npz"))
        for kernel in kernels:
            model = engine.load(path, kernel=kernel, threads=2)
            scores = model.scores(ref["x"])
            same = scores.dtype == ref["scores"].dtype and np.array_equal(scores, ref["scores"])
            pred = np.array_equal(model.predict(ref["x"]), ref["scores"].argmax(1))
            ok = same and pred
            failed += not ok
            print(f"{path.name} kernel={kernel}: scores bit-identical {same}, predictions {pred}")
    print(f"{'FAILED' if failed else 'all bit-identical'}: {len(files)} models × {kernels}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=["make", "check"])
    p.add_argument("dir", type=Path)
    p.add_argument(
        "--only", nargs="+", choices=GOLDEN_MODELS, help="make: these models only (default: all)"
    )
    args = p.parse_args(argv)
    if args.mode == "make":
        make(args.dir, args.only)
        return 0
    return check(args.dir)


if __name__ == "__main__":
    sys.exit(main())
