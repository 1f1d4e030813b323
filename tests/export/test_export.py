"""Tests of binarynet.export: batch norm + sign → integer thresholds (checked exhaustively against
torch), the graph and packed tensors it writes, unsupported models, the file size, the
preprocessor, and ``binarynet export`` from a training checkpoint.

The bit-exactness of whole exported networks on the engine is tested in test_engine.py.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from binarynet import _kernels
from binarynet.backends import engine
from binarynet.cli import main
from binarynet.config import TrainConfig
from binarynet.data import mnist_sample
from binarynet.data.preprocess import STATE_VERSION, PixelScaling, load_preprocessor
from binarynet.export import ExportError, build_graph, export, threshold_interval
from binarynet.graph import bnnfile
from binarynet.graph.bnnfile import BNNFileError
from binarynet.graph.values import INT32_MAX, INT32_MIN, unpack_bits
from binarynet.training.checkpoint import preprocessor_state_to_torch, save_checkpoint
from binarynet.training.models import cifar10_convnet, mnist_mlp
from binarynet.training.nn import (
    BinaryActivation,
    BinaryConv2d,
    BinaryLinear,
    ExactBatchNorm1d,
    ExactBatchNorm2d,
    FixedPointInput,
    ShiftBatchNorm1d,
)
from binarynet.training.quantize import binarize


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small models are fastest on one thread, and do not stall on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------


def _batch_norm(cls: type, c: int, rng: np.random.Generator, input_scale: float) -> nn.Module:
    """A batch norm in eval mode whose channels cover every case: ties (β = 0, running mean an
    integer multiple of input_scale, so f(y) == 0 exactly at y = mean/input_scale), γ < 0,
    γ = 0, thresholds inside and far outside [−R, R], tiny and huge variances."""
    bn = cls(c).eval()
    with torch.no_grad():
        mean = rng.integers(-40, 41, c) * input_scale
        mean[::9] = rng.choice([-1e6, 1e6, 1e-3, -0.3], len(mean[::9]))
        gamma = rng.uniform(0.01, 4.0, c) * rng.choice([-1.0, 1.0], c)
        gamma[::5] = 0.0
        beta = rng.normal(0.0, 1.0, c)
        beta[::2] = 0.0
        beta[3::10] = -0.0
        var = np.exp(rng.uniform(-12.0, 8.0, c))
        bn.running_mean.copy_(torch.from_numpy(mean))
        bn.running_var.copy_(torch.from_numpy(var))
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    return bn


@pytest.mark.parametrize("cls", [ExactBatchNorm1d, ShiftBatchNorm1d])
@pytest.mark.parametrize(("input_scale", "bound"), [(1.0, 301), (2.0**-7, 128 * 9)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_threshold_interval_is_exact_for_every_reachable_integer(
    cls: type, input_scale: float, bound: int, with_bias: bool
) -> None:
    """For every integer |y| ≤ R: lo ≤ y ≤ hi ⇔ the torch unit (bias add, batch norm in eval
    mode, binarize) outputs +1."""
    rng = np.random.default_rng(int(input_scale * 1000) + bound + with_bias)
    c = 90
    bn = _batch_norm(cls, c, rng, input_scale)
    bias = rng.normal(0, 3, c).astype(np.float32) if with_bias else None
    if bias is not None:
        bias[::3] = 0.0
    scale, shift = (t.numpy() for t in bn.eval_affine())
    lo, hi = threshold_interval(bound, input_scale, bias, scale, shift)
    assert lo.dtype == np.int32 and hi.dtype == np.int32

    y = torch.arange(-bound, bound + 1, dtype=torch.float32)[:, None].expand(-1, c)
    with torch.no_grad():
        v = y * input_scale
        if bias is not None:
            v = v + torch.from_numpy(bias)
        normed = bn(v)
        plus = binarize(normed) > 0
    ys = np.arange(-bound, bound + 1)[:, None]
    assert np.array_equal((ys >= lo) & (ys <= hi), plus.numpy())

    # Every kind of channel occurs, ties included.
    up = (hi == INT32_MAX) & (lo > -bound) & (lo <= bound)
    down = (lo == INT32_MIN) & (hi >= -bound) & (hi < bound)
    always = (lo <= -bound) & (hi >= bound)
    never = lo > hi
    assert np.all(up | down | always | never)
    assert up.any() and down.any() and always.any() and never.any()
    assert int((normed == 0).sum()) > 0  # ties: f(y) == 0 gives +1, as in torch


def test_threshold_interval_encodings() -> None:
    """The canonical intervals: up-set [τ, MAX], down-set [MIN, τ], always +1 [MIN, MAX],
    always −1 [MAX, MIN]; the tie f(τ) == 0 belongs to the +1 side."""
    scale = np.array([1.0, -1.0, 0.0, 0.0, 1.0, 1.0, 0.5], np.float32)
    shift = np.array([-3.0, 3.0, 0.0, -1.0, 50.0, -50.0, -1.25], np.float32)
    lo, hi = threshold_interval(10, 1.0, None, scale, shift)
    assert lo.tolist() == [3, INT32_MIN, INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX, 3]
    assert hi.tolist() == [INT32_MAX, 3, INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX]
    # The first layer: y = s with torch value s·2⁻⁷ + b.
    lo, hi = threshold_interval(1000, 2.0**-7, np.array([0.5], np.float32), scale[:1], shift[:1])
    assert (lo[0], hi[0]) == (320, INT32_MAX)  # (320/128 + 0.5) − 3 = 0
    with pytest.raises(ExportError, match="reachable bound"):
        threshold_interval(1 << 24, 1.0, None, scale, shift)


# --------------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------------


def test_mlp_graph_and_packed_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mnist_mlp(96, 2, dropout_in=0.2, dropout_hidden=0.5)
    graph = export(model, tmp_path / "m.bnn", model="mnist-mlp", model_kwargs={"hidden": 96})
    assert [op.type for op in graph.ops] == [
        "dense",
        "threshold",
        "dense",
        "threshold",
        "dense",
        "scores",
    ]
    assert graph.input.shape == (28, 28) and graph.input.layout == "NHW"
    assert (graph.input.zero_point, graph.input.scale) == (128, 2.0**-7)
    assert graph.num_classes == 10
    assert graph.ops[-1].input_scale == 1.0 and graph.ops[-1].bias is None
    prov = graph.provenance
    assert prov["model"] == "mnist-mlp" and prov["model_kwargs"] == {"hidden": 96}
    assert prov["binarynet_version"] and prov["torch_version"] == str(torch.__version__)

    bnn = bnnfile.load(tmp_path / "m.bnn")
    layers = [m for m in model if isinstance(m, BinaryLinear)]
    for op, layer in zip(bnn.graph.ops[::2], layers, strict=True):
        packed = bnn.tensors[op.weight]
        # sign(W) packed by the compiled kernel: the same bits.
        expected = _kernels.pack_signs(binarize(layer.weight.detach()).numpy())
        assert packed.dtype == np.uint64 and np.array_equal(packed, expected)
        negative = layer.weight.detach().numpy() < 0
        assert np.array_equal(unpack_bits(packed, layer.in_features), negative)
    # The flat input [N, 784] is the same model.
    assert build_graph(model, (784,))[0].input.layout == "NF"


def test_sign_of_zero_weights_is_plus_one(tmp_path: Path) -> None:
    model = mnist_mlp(64, 1).eval()
    with torch.no_grad():
        first = model[2].weight
        first[:, :100] = 0.0
        first[:, 100:200] = -0.0
    _, tensors = build_graph(model)
    bits = unpack_bits(tensors["op0.weight"], 784)
    assert not bits[:, :200].any()
    assert np.array_equal(bits[:, 200:], first[:, 200:].detach().numpy() < 0)


def test_flatten_permutes_columns_to_hwc_with_per_position_padding() -> None:
    """After a conv with C = 5 channels on a 3×2 map, torch flattens (C, H, W); the engine's
    activations are [H, W, ceil(C/64)] words, so the dense weight is [O, H, W, 1] words whose
    bit c of word (h, w) is the torch column c·H·W + h·W + w."""
    torch.manual_seed(1)
    model = nn.Sequential(
        FixedPointInput(),
        BinaryConv2d(2, 5, 3, padding=0, binarize_input=False),
        ExactBatchNorm2d(5),
        BinaryActivation(),
        nn.Flatten(),
        BinaryLinear(30, 4, binarize_input=False),
        ExactBatchNorm1d(4),
    )
    graph, tensors = build_graph(model, (2, 5, 4))  # conv output 3×2
    assert graph.input.shape == (5, 4, 2) and graph.input.layout == "NHWC"
    conv_w = tensors["op0.weight"]
    assert conv_w.shape == (5, 1)  # u8 input: taps (i, j, c) packed flat, 18 bits
    conv = model[1].weight.detach()
    taps = conv.permute(0, 2, 3, 1).reshape(5, 18).numpy() < 0
    assert np.array_equal(unpack_bits(conv_w, 18), taps)
    dense_w = tensors["op2.weight"]
    assert dense_w.shape == (4, 3, 2, 1)
    torch_w = model[5].weight.detach().numpy() < 0  # [4, 30], columns (c, h, w)
    bits = unpack_bits(dense_w, 5)  # [4, 3, 2, 5]
    for h in range(3):
        for w in range(2):
            for c in range(5):
                assert np.array_equal(bits[:, h, w, c], torch_w[:, c * 6 + h * 2 + w])


class _DilatedCall(nn.Module):
    """A functional convolution with dilation 2 (BinaryConv2d's own forward ignores a dilation
    attribute, so only a functional call computes one)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = FixedPointInput()
        self.weight = nn.Parameter(torch.ones(4, 3, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(self.inp(x), self.weight, dilation=2)


def _bad_models() -> list[tuple[nn.Module, str, dict]]:
    def mlp(*middle: nn.Module, first: nn.Module | None = None) -> nn.Sequential:
        return nn.Sequential(
            FixedPointInput(),
            nn.Flatten(),
            first or BinaryLinear(784, 16, binarize_input=False),
            *middle,
        )

    cannot = "export: cannot represent "
    return [
        (nn.Linear(3, 3), "must start with FixedPointInput", {}),
        (nn.Sequential(nn.Flatten()), "must start with FixedPointInput", {}),
        (
            mlp(ExactBatchNorm1d(16), nn.ReLU()),
            cannot + r"'relu' \(model\.4: ReLU\) exactly in a \.bnn graph: no \.bnn op computes "
            "it; supported: FixedPointInput, BinaryLinear",
            {},
        ),
        (
            mlp(nn.BatchNorm1d(16), BinaryActivation()),
            cannot + r"'batch_norm' \(model\.3: BatchNorm1d\).*"
            "use binarynet.training.nn.ExactBatchNorm1d",
            {},
        ),
        (
            mlp(ExactBatchNorm1d(16), first=BinaryLinear(784, 16, binarize_input=True)),
            cannot + r"'copysign' \(model\.2: BinaryLinear, quantize\.py:\d+\).*the sign of the "
            r"8-bit input \(binarize_input=True on the first layer\)",
            {},
        ),
        (
            mlp(BinaryActivation()),
            "the model must end with BinaryLinear → batch norm producing the class scores; it "
            r"ends with 'bits' values of shape \[16\] \(model\.3: BinaryActivation",
            {},
        ),
        (
            mlp(
                ExactBatchNorm1d(16), BinaryActivation(), BinaryLinear(15, 10), ExactBatchNorm1d(10)
            ),
            r"could not capture the model's evaluation forward on uint8 input \[2, 28, 28\].*"
            r"\[2, 16\] X \[15, 10\]",
            {},
        ),
        (
            nn.Sequential(FixedPointInput(), BinaryLinear(28, 10, binarize_input=False)),
            cannot + r"'linear' \(model\.1: BinaryLinear, nn\.py:\d+\).*add an nn.Flatten",
            {"input_shape": (28, 28)},
        ),
        (
            cifar10_convnet(0.05),
            r"pass input_shape=\(C, H, W\)",
            {},
        ),
        (
            nn.Sequential(
                FixedPointInput(),
                BinaryConv2d(3, 4, 3, binarize_input=False),
                nn.MaxPool2d(2, padding=1),
            ),
            r"'max_pool2d' \(model\.2: MaxPool2d.*only padding=0",
            {"input_shape": (3, 8, 8)},
        ),
        (
            _DilatedCall(),
            cannot + r"'conv2d' \(model: _DilatedCall, test_export\.py:\d+\).*dilation=\[2, 2\]",
            {"input_shape": (3, 8, 8)},
        ),
        (
            nn.Sequential(FixedPointInput(), BinaryConv2d(3, 4, 3, binarize_input=False)),
            r"on uint8 input \[2, 1, 8, 8\].*expected input\[2, 1, 8, 8\] to have 3 channels",
            {"input_shape": (1, 8, 8)},
        ),
        (
            nn.Sequential(
                FixedPointInput(),
                BinaryConv2d(3, 4, 3, binarize_input=False),
                ExactBatchNorm1d(4),
            ),
            "ExactBatchNorm1d expects a 2-D or 3-D input, got 4-D",
            {"input_shape": (3, 8, 8)},
        ),
        (mnist_mlp(16, 1), "provenance must be JSON-serialisable", {"when": object()}),
    ]


@pytest.mark.parametrize(("model", "match", "kwargs"), _bad_models())
def test_unsupported_models_are_refused(model: nn.Module, match: str, kwargs: dict) -> None:
    with pytest.raises(ExportError, match=match):
        build_graph(model, **kwargs)


def test_non_finite_batch_norm_is_refused() -> None:
    model = mnist_mlp(16, 1)
    with torch.no_grad():
        model[3].running_var[2] = -1.0  # rsqrt of a negative variance: NaN
    with pytest.raises(ExportError, match=r"'mul' \(model\.3: ExactBatchNorm1d.*not finite"):
        build_graph(model)


def test_export_leaves_the_model_alone(tmp_path: Path) -> None:
    model = cifar10_convnet(0.05, fc_width=16).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export(model, tmp_path / "c.bnn", model="cifar10-convnet")  # default input 3×32×32
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert engine.load(tmp_path / "c.bnn").input_shape == (32, 32, 3)


def test_file_is_at_most_one_28th_of_the_float32_state_dict(tmp_path: Path) -> None:
    """mnist_mlp(4096, 3): 1 bit per weight and two int32 per hidden unit, against 32 bits."""
    model = mnist_mlp(4096, 3)
    float_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    export(model, tmp_path / "big.bnn", model="mnist-mlp")
    size = (tmp_path / "big.bnn").stat().st_size
    print(f"float32 state_dict {float_bytes} bytes, .bnn {size} bytes: 1/{float_bytes / size:.1f}")
    assert size * 28 <= float_bytes
    assert float_bytes / size > 30


# --------------------------------------------------------------------------------------------
# Preprocessing, checkpoints and the command line
# --------------------------------------------------------------------------------------------


def _gcn_zca_state(rng: np.random.Generator) -> dict:
    """A GCN + ZCA preprocessor state for 28×28 images (random, not fitted: fitting is slow)."""
    d = 784
    a = rng.normal(0.0, 0.05, (d, d))
    return {
        "kind": "gcn-zca",
        "version": STATE_VERSION,
        "image_shape": [28, 28],
        "gcn_scale": 55.0,
        "gcn_subtract_mean": True,
        "gcn_use_std": False,
        "gcn_sqrt_bias": 0.0,
        "gcn_min_divisor": 1e-8,
        "zca_filter_bias": 0.1,
        "quant_scale": 0.05,
        "quant_percentile": 99.99,
        "quant_pow2": False,
        "quant_clip_fraction": None,
        "zca_mean": rng.normal(0.0, 0.1, d).astype(np.float32),
        "zca_whitening": ((a + a.T) / 2 + np.eye(d)).astype(np.float32),
    }


def test_checkpoint_export_command_with_a_preprocessor(tmp_path: Path, capsys) -> None:
    """`binarynet export best.pt model.bnn` keeps the run's preprocessor: the engine given raw
    images equals the torch model given the preprocessed ones."""
    torch.manual_seed(3)
    cfg = TrainConfig(model="mnist-mlp", model_kwargs={"hidden": 40, "depth": 2})
    model = mnist_mlp(40, 2).eval()
    with torch.no_grad():
        for bn in (m for m in model if isinstance(m, ExactBatchNorm1d)):
            bn.running_mean.uniform_(-10, 10)
            bn.running_var.uniform_(1, 40)
    state = _gcn_zca_state(np.random.default_rng(0))
    checkpoint = tmp_path / "run" / "best.pt"
    save_checkpoint(
        checkpoint,
        {
            "config": dataclasses.asdict(cfg),
            "model_state": model.state_dict(),
            "epoch": 7,
            "metrics": {"valid_error": 0.25, "test_error": math.nan},
            "preprocess": preprocessor_state_to_torch(state),
        },
    )
    out = tmp_path / "model.bnn"
    assert main(["export", str(checkpoint), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: mnist-mlp" in printed and "3 binary layers" in printed

    loaded = engine.load(out)
    prov = loaded.graph.provenance
    assert prov["model"] == "mnist-mlp" and prov["model_kwargs"] == {"hidden": 40, "depth": 2}
    assert prov["epoch"] == 7 and prov["metrics"] == {"valid_error": 0.25}
    assert prov["dataset"] == "mnist" and prov["checkpoint"] == "best.pt"
    assert loaded.preprocessor is not None and loaded.preprocessor.kind == "gcn-zca"
    assert "preprocess='gcn-zca'" in repr(loaded)

    raw = mnist_sample().test.images[:300]
    pre = load_preprocessor(state).transform(raw)
    assert not np.array_equal(pre, raw)
    with torch.no_grad():
        expected = model(torch.from_numpy(pre)).numpy()
    assert np.array_equal(loaded.scores(raw), expected)
    assert np.array_equal(loaded.scores(pre, preprocess=False), expected)
    assert np.array_equal(loaded.predict(raw), expected.argmax(1))


def test_preprocessor_must_fit_the_input(tmp_path: Path) -> None:
    model = cifar10_convnet(0.05, fc_width=16)
    export(model, tmp_path / "p.bnn", input_shape=(3, 32, 32), preprocessor=PixelScaling())
    assert engine.load(tmp_path / "p.bnn").preprocessor.kind == "pixels"
    mlp = mnist_mlp(16, 1)
    wrong = load_preprocessor(
        {**_gcn_zca_state(np.random.default_rng(1)), "image_shape": [28, 28, 1]}
    )
    with pytest.raises(BNNFileError, match=r"preprocess: it takes images of shape \[28, 28, 1\]"):
        export(mlp, tmp_path / "q.bnn", preprocessor=wrong)
    assert not (tmp_path / "q.bnn").exists()


def test_export_command_errors(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path / "none.pt"), str(tmp_path / "x.bnn")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_pad_value_is_exported_for_bits_and_refused_on_the_image(tmp_path: Path) -> None:
    """±1 padding is a field of the binary convolution (absent for 0: the zero-padded file is
    the one written without it); on the 8-bit first layer it is refused with one line."""
    from binarynet.training.nn import BinaryConv2d, FixedPointInput

    model = cifar10_convnet(0.05, fc_width=16, pad_value=-1)
    graph, _ = build_graph(model, (3, 32, 32))
    convs = [op for op in graph.ops if op.type == "conv2d"]
    assert [op.pad_value for op in convs] == [0, -1, -1, -1, -1, -1]
    assert "pad_value" not in convs[0].to_json() and convs[1].to_json()["pad_value"] == -1
    zero, _ = build_graph(cifar10_convnet(0.05, fc_width=16), (3, 32, 32))
    assert all("pad_value" not in op.to_json() for op in zero.ops)
    first = nn.Sequential(
        FixedPointInput(), BinaryConv2d(3, 4, 3, padding=1, binarize_input=False, pad_value=1)
    )
    with pytest.raises(
        ExportError,
        match=r"cannot represent '(pad|constant_pad_nd)' \(model\.1: BinaryConv2d.*only for ±1",
    ):
        build_graph(first, (3, 8, 8))
