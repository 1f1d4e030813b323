"""The networks FINN's compiler is checked on, exported for it: each one's ``.bnn``, its QONNX
file for FINN (``target="finn"``) and an ``.npz`` of uint8 test images with the engine's scores,
the inputs of ``tools/finn_build.py`` (which runs in the FINN environment).

    python tools/finn_models.py OUT_DIR [--images N] [--full]

Networks (batch norm statistics measured on training images, as training leaves them):

- ``mlp``: the MNIST MLP 784-128-128-10 (``--full``: the shipped ``pretrained:mnist-mlp-256``,
  784-256-256-10, trained), on the MNIST test images shipped with the package;
- ``cnv``: a CNV-style CIFAR-10 ConvNet, FINN's own topology (FPGA'17): 3×3 convolutions
  unpadded, (2×C)–MP2–(2×2C)–MP2–(2×4C)–2×FC–10, C = 16 (``--full``: FINN's C = 64 and its
  two 512-wide dense layers), on random images;
- ``cnv-pad1``: the same with its first, uint8 convolution padded by 1 (zero padding of
  x̃ = p − zp is exact on FINN);
- ``cnv-pm1``: every convolution padded by 1, the first with 0 (x̃), the binary ones with −1
  (``pad_value=-1``, FINN's own padding of 1-bit streams); γ > 0 (a γ < 0 channel behind a
  max-pool pools as a minimum, which FINN cannot pad with −1: refused).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from binarynet import pretrained
from binarynet.backends import engine
from binarynet.backends.qonnx import write_qonnx
from binarynet.data import mnist_sample
from binarynet.export import export
from binarynet.training.models import images_to_torch
from binarynet.training.nn import (
    BinaryActivation,
    BinaryConv2d,
    BinaryLinear,
    ExactBatchNorm1d,
    ExactBatchNorm2d,
    FixedPointInput,
)


def mlp(hidden: int = 128) -> nn.Sequential:
    """784-hidden-hidden-10, the paper's MLP structure."""
    layers: list[nn.Module] = [FixedPointInput(), nn.Flatten()]
    features = 784
    for _ in range(2):
        layers += [
            BinaryLinear(features, hidden, binarize_input=False),
            ExactBatchNorm1d(hidden),
            BinaryActivation(),
        ]
        features = hidden
    layers += [BinaryLinear(features, 10, binarize_input=False), ExactBatchNorm1d(10)]
    return nn.Sequential(*layers)


def cnv(
    width: int = 16, fc: int = 64, first_padding: int = 0, pad_value: int | None = None
) -> nn.Sequential:
    """FINN's CNV: 3×3 convolutions, (2×C)–MP2–(2×2C)–MP2–(2×4C)–FC–FC–10 on 3×32×32; with
    ``pad_value``, every binary convolution padded by 1 with that ±1 value."""
    layers: list[nn.Module] = [FixedPointInput()]
    channels, size = 3, 32
    for i, out in enumerate((width, width, 2 * width, 2 * width, 4 * width, 4 * width)):
        padding = first_padding if i == 0 else int(pad_value is not None)
        layers.append(
            BinaryConv2d(
                channels,
                out,
                3,
                padding=padding,
                binarize_input=False,
                pad_value=pad_value if i and pad_value is not None else 0,
            )
        )
        size = size + 2 * padding - 2
        if i in (1, 3):
            layers.append(nn.MaxPool2d(2))
            size //= 2
        layers += [ExactBatchNorm2d(out), BinaryActivation()]
        channels = out
    layers.append(nn.Flatten())
    features = channels * size * size
    for _ in range(2):
        layers += [
            BinaryLinear(features, fc, binarize_input=False),
            ExactBatchNorm1d(fc),
            BinaryActivation(),
        ]
        features = fc
    layers += [BinaryLinear(features, 10, binarize_input=False), ExactBatchNorm1d(10)]
    return nn.Sequential(*layers)


def calibrate(
    model: nn.Sequential, images: np.ndarray, seed: int, negative_gamma: bool = True
) -> nn.Sequential:
    """Random ±1 weights (seeded), batch norm statistics measured on ``images`` (one pass,
    cumulative averages) and random affine parameters: γ ~ N(1, 0.5) (about 2 % of the
    channels γ < 0, down-set thresholds), or |γ| when not ``negative_gamma``; β ~ N(0, 0.3).
    Eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (BinaryLinear, BinaryConv2d)):
                m.weight.uniform_(-1, 1)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
                m.weight.normal_(1.0, 0.5)
                if not negative_gamma:
                    m.weight.abs_()
                m.bias.normal_(0.0, 0.3)
        model.train()
        model(images_to_torch(images))
    return model.eval()


def _mnist(n: int) -> tuple[np.ndarray, np.ndarray]:
    sample = mnist_sample()
    return sample.train.images[:512], sample.test.images[:n]


def _cifar_like(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (
        rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
    )


def networks(full: bool) -> dict[str, tuple[Callable[[], nn.Sequential] | None, Callable]]:
    """name → (builder, or None for the shipped pretrained MLP; data)."""
    width, fc = (64, 512) if full else (16, 64)
    return {
        "mlp": (None if full else mlp, _mnist),
        "cnv": (lambda: cnv(width, fc), _cifar_like),
        "cnv-pad1": (lambda: cnv(width, fc, first_padding=1), _cifar_like),
        "cnv-pm1": (lambda: cnv(width, fc, first_padding=1, pad_value=-1), _cifar_like),
    }


def write(out: Path, name: str, images: int, full: bool = False) -> tuple[Path, Path]:
    """``OUT/NAME.bnn``, ``OUT/NAME.onnx`` (for FINN) and ``OUT/NAME.npz``; the last two."""
    build, data = networks(full)[name]
    train, test = data(images)
    bnn = out / f"{name}.bnn"
    if build is None:
        bnn.write_bytes(pretrained.path("mnist-mlp-256").read_bytes())
    else:
        shape = (3, 32, 32) if train.ndim == 4 else (28, 28)
        model = calibrate(build(), train, seed=len(name), negative_gamma=name != "cnv-pm1")
        export(model, bnn, input_shape=shape, model=name)
    model = engine.load(bnn)
    test = test.reshape(len(test), *model.input_shape)
    onnx_path, case = out / f"{name}.onnx", out / f"{name}.npz"
    write_qonnx(bnn, onnx_path, target="finn")
    np.savez(case, images=test, scores=model.scores(test, preprocess=False))
    return onnx_path, case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--full", action="store_true", help="the full-size networks")
    parser.add_argument("--only", nargs="*", default=None, help="names of networks")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or networks(args.full):
        onnx_path, case = write(args.out, name, args.images, args.full)
        print(f"wrote {onnx_path} and {case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
