"""Torch models shared by the tests of several back-ends: the engine's exactness cases (MNIST MLP,
CIFAR-10 ConvNet, the same with its binary convolutions padded with −1 (pm1) or +1 (pp1), an odd
ConvNet; fresh, trained a few steps, or "stressed" so that every kind of threshold occurs), and
two tiny models whose summary rows are computed by hand."""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from binarynet.data import load_mnist, mnist_sample
from binarynet.export import export
from binarynet.training.losses import square_hinge_loss
from binarynet.training.models import cifar10_convnet, mnist_mlp
from binarynet.training.nn import (
    BinaryActivation,
    BinaryConv2d,
    BinaryLinear,
    ExactBatchNorm1d,
    ExactBatchNorm2d,
    FixedPointInput,
    ShiftBatchNorm1d,
    ShiftBatchNorm2d,
    clip_weights_,
)
from binarynet.training.optim import ShiftAdaMax, param_groups

REAL_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"

# --------------------------------------------------------------------------------------------
# Models and data
# --------------------------------------------------------------------------------------------


def odd_convnet(shift_bn: bool) -> nn.Sequential:
    """Input 3×15×13: a first conv with 70 channels (two words), bias and pooling on the
    integers; a strided, non-square conv with 5 channels; a 1×1 conv to 65 channels with a
    non-square pool on bits; Flatten over 3×2×65 (per-position channel padding); dense layers
    with 33 and 7 outputs, one with bias."""
    bn2 = ShiftBatchNorm2d if shift_bn else ExactBatchNorm2d
    bn1 = ShiftBatchNorm1d if shift_bn else ExactBatchNorm1d
    return nn.Sequential(
        FixedPointInput(),
        BinaryConv2d(3, 70, 3, padding=1, bias=True, binarize_input=False),
        nn.MaxPool2d(2),  # 15×13 → 7×6
        bn2(70),
        BinaryActivation(),
        BinaryConv2d(70, 5, (3, 2), stride=(2, 1), padding=(1, 0), binarize_input=False),  # 4×5
        bn2(5),
        BinaryActivation(),
        BinaryConv2d(5, 65, 1, binarize_input=True),
        nn.MaxPool2d((2, 3), stride=(1, 2)),  # 3×2
        bn2(65),
        BinaryActivation(),
        nn.Flatten(),
        nn.Dropout(0.1),
        BinaryLinear(390, 33, bias=True, binarize_input=False),
        bn1(33),
        BinaryActivation(),
        BinaryLinear(33, 7, binarize_input=False),
        bn1(7),
    )


@functools.cache
def mnist_test_images() -> tuple[np.ndarray, np.ndarray]:
    """Real MNIST test images when ../shared/data/mnist exists, else the bundled sample's."""
    splits = load_mnist(REAL_MNIST) if REAL_MNIST.is_dir() else mnist_sample()
    return splits.test.images, splits.test.labels


def _extremes(shape: tuple[int, ...]) -> np.ndarray:
    return np.stack([np.full(shape, v, dtype=np.uint8) for v in (0, 127, 128, 255)])


def _train(model: nn.Sequential, batches, x: torch.Tensor, y: torch.Tensor, shift: bool) -> None:
    """Optimizer steps (ShiftAdaMax or Adam, the paper's learning-rate scaling) over the index
    ``batches`` of (x, y), the latent weights clipped after each, then evaluation mode."""
    model.train()
    lr = 2.0**-6
    groups = param_groups(model, lr, glorot=True, pow2=shift)
    opt = ShiftAdaMax(groups, lr=lr) if shift else torch.optim.Adam(groups, lr=lr)
    for idx in batches:
        loss = square_hinge_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        clip_weights_(model)
    model.eval()


def _train_a_little(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, shift: bool) -> None:
    """A few optimizer steps: non-trivial weights and BN statistics."""
    g = torch.Generator().manual_seed(1)
    _train(model, (torch.randint(0, len(x), (48,), generator=g) for _ in range(6)), x, y, shift)


def _colour_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 32×32 colour images (NCHW uint8) whose class (of 10) sets their mean colour, with
    noise: a task one epoch of training makes progress on."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    palette = torch.randint(30, 226, (10, 3, 1, 1), generator=g).float()
    noise = torch.randn((n, 3, 32, 32), generator=g) * 40
    return (palette[labels] + noise).clamp(0, 255).to(torch.uint8), labels


def _train_one_epoch(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> float:
    """One epoch of Adam over (x, y) in batches of 64, as the trainer does; the accuracy on x
    after it."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(2))
    _train(model, order.split(64), x, y, shift=False)
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


_BNS = (ExactBatchNorm1d, ShiftBatchNorm1d)


@torch.no_grad()
def _stress(model: nn.Sequential, x: torch.Tensor, seed: int) -> int:
    """Set every batch norm's statistics so that f(y) == 0 exactly on observed inputs (running
    mean = an observed value, β = 0 on half the channels), with γ < 0 on some channels, γ = 0
    on others and thresholds far outside the reachable range on a few. Returns how many batch
    norm outputs before a sign() are exactly 0 (ties) afterwards."""
    rng = np.random.default_rng(seed)
    model.eval()
    bns = [m for m in model if isinstance(m, _BNS)]
    for bn in bns:
        seen: list[torch.Tensor] = []
        hook = bn.register_forward_pre_hook(lambda m, inp, seen=seen: seen.append(inp[0]))
        model(x)
        hook.remove()
        c = bn.num_features
        v = seen[0].transpose(0, 1).reshape(c, -1)
        mean = v[torch.arange(c), torch.from_numpy(rng.integers(0, v.shape[1], c))]
        far = torch.from_numpy(rng.random(c) < 0.1)
        mean[far] = torch.from_numpy(rng.choice([-1e5, 1e5], int(far.sum())).astype(np.float32))
        gamma = rng.uniform(0.05, 3.0, c) * rng.choice([-1.0, 1.0], c)
        gamma[::7] = 0.0
        beta = rng.normal(0.0, 2.0, c)
        beta[rng.random(c) < 0.5] = 0.0
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(torch.from_numpy(rng.uniform(0.01, 60.0, c)))
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    outputs: list[torch.Tensor] = []
    hooks = [bn.register_forward_hook(lambda m, i, out: outputs.append(out)) for bn in bns[:-1]]
    model(x)
    for h in hooks:
        h.remove()
    return sum(int((out == 0).sum()) for out in outputs)


@dataclass
class Case:
    """A torch model, its .bnn file, inputs (engine layout) and the torch results."""

    name: str
    model: nn.Sequential
    path: Path
    x: np.ndarray  # uint8, engine layout
    scores: np.ndarray  # torch's float32 scores
    layer_outputs: list[np.ndarray]  # torch outputs of each binary layer, engine layout
    layer_scales: list[tuple[float, np.ndarray | None]]  # (input_scale, bias) per layer


def _torch_run(model: nn.Sequential, x_torch: torch.Tensor) -> tuple[np.ndarray, list]:
    outputs: list[np.ndarray] = []

    def keep(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        out = out.detach()
        if out.dim() == 4:
            out = out.permute(0, 2, 3, 1)  # NCHW → NHWC
        outputs.append(out.contiguous().numpy())

    layers = [m for m in model.modules() if isinstance(m, (BinaryLinear, BinaryConv2d))]
    hooks = [m.register_forward_hook(keep) for m in layers]
    with torch.no_grad():
        scores = model(x_torch).numpy()
    for h in hooks:
        h.remove()
    return scores, outputs


@functools.cache
def _tmpdir() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="binarynet-test-engine-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


@contextlib.contextmanager
def one_torch_thread():
    """Small models train fastest on one thread, and do not stall on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@functools.cache
def get_case(name: str) -> Case:
    """Build (once per session) the model of ``name`` = "{arch}-{state}-{bn}"."""
    with one_torch_thread():
        return _build_case(name)


def _build_case(name: str) -> Case:
    arch, state, bn = name.split("-")
    shift = bn == "shift"
    torch.manual_seed(zlib.crc32(name.encode()))
    if arch == "mlp":
        images, labels = mnist_test_images()
        if state == "trained":  # every test image (the others: 500, for the slow kernels)
            x = np.concatenate([images, _extremes((28, 28))])
        else:
            x = np.concatenate([images[:500], _extremes((28, 28))])
        x_torch = torch.from_numpy(x)
        if state == "trained":
            model = mnist_mlp(130, 2, shift_bn=shift, dropout_in=0.2, dropout_hidden=0.3)
        else:
            model = mnist_mlp(96, 2 if state == "fresh" else 3, shift_bn=shift)
        train_x, train_y = x_torch[:500], torch.from_numpy(labels[:500])
        shape: tuple[int, ...] = (28, 28)
    else:
        if arch in ("cifar", "pm1", "pp1"):  # pm1 / pp1: binary convolutions padded with ∓1
            pad_value = {"cifar": 0, "pm1": -1, "pp1": 1}[arch]
            model = cifar10_convnet(0.125, shift_bn=shift, fc_width=96, pad_value=pad_value)
            shape = (3, 32, 32)
        else:
            model, shape = odd_convnet(shift), (3, 15, 13)
        g = torch.Generator().manual_seed(7)
        x_nchw = torch.randint(0, 256, (64, *shape), dtype=torch.uint8, generator=g)
        x = np.concatenate([x_nchw.permute(0, 2, 3, 1).numpy(), _extremes(shape[1:] + shape[:1])])
        x_torch = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        train_x = x_torch[:64]
        train_y = torch.randint(0, 7 if arch == "odd" else 10, (64,), generator=g)
    if state == "trained":
        _train_a_little(model, train_x, train_y, shift)
    elif state == "epoch":  # one epoch over 1 024 labelled colour images
        epoch_x, epoch_y = _colour_images(1024, seed=11)
        accuracy = _train_one_epoch(model, epoch_x, epoch_y)
        assert accuracy > 0.3, f"one epoch learnt nothing ({accuracy:.0%})"
        x = np.concatenate([epoch_x[:200].permute(0, 2, 3, 1).numpy(), x])
        x_torch = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    elif state == "stressed":
        _train_a_little(model, train_x, train_y, shift)
        assert _stress(model, x_torch[:512], seed=len(name)) > 0, "no ties were constructed"
    model.eval()
    path = _tmpdir() / f"{name}.bnn"
    export(model, path, input_shape=shape, model=name)
    scores, outputs = _torch_run(model, x_torch)
    layers = [m for m in model.modules() if isinstance(m, (BinaryLinear, BinaryConv2d))]
    scales = [
        (2.0**-7 if i == 0 else 1.0, None if m.bias is None else m.bias.detach().numpy())
        for i, m in enumerate(layers)
    ]
    return Case(name, model, path, x, scores, outputs, scales)


CASES = [
    f"{arch}-{state}-{bn}"
    for arch, states in (
        ("mlp", ("fresh", "trained", "stressed")),
        ("cifar", ("fresh", "trained", "stressed")),
        ("odd", ("trained", "stressed")),
        ("pm1", ("trained", "stressed", "epoch")),
        ("pp1", ("trained",)),
    )
    for state in states
    for bn in ("std", "shift")
]


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.normal_(generator=g)
                m.bias.normal_(generator=g)
    return model.eval()


def tiny_mlp(bias: bool = False) -> nn.Sequential:
    """16 inputs (4×4 pixels) → 8 → 10."""
    torch.manual_seed(0)
    return randomise_bn(
        nn.Sequential(
            FixedPointInput(),
            nn.Flatten(),
            BinaryLinear(16, 8, bias=bias, binarize_input=False),
            ExactBatchNorm1d(8),
            BinaryActivation(),
            BinaryLinear(8, 10, bias=bias, binarize_input=False),
            ExactBatchNorm1d(10),
        )
    )


def tiny_convnet() -> nn.Sequential:
    """3×4×4 → conv 4 (8-bit input) → pool → conv 5 (bits) → dense 10."""
    torch.manual_seed(0)
    return randomise_bn(
        nn.Sequential(
            FixedPointInput(),
            BinaryConv2d(3, 4, 3, padding=1, binarize_input=False),
            nn.MaxPool2d(2),
            ExactBatchNorm2d(4),
            BinaryActivation(),
            BinaryConv2d(4, 5, 3, padding=1, binarize_input=False),
            ExactBatchNorm2d(5),
            BinaryActivation(),
            nn.Flatten(),
            BinaryLinear(20, 10, binarize_input=False),
            ExactBatchNorm1d(10),
        )
    )
