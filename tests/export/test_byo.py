"""Bring your own network: models written the ways people write PyTorch are exported as what they
compute — bit-exact on the engine, in C and in QONNX against torch on 500 inputs — or refused with
one line naming the op; the self-check catches a wrong export; chain networks written as a
Sequential, as a module with a forward and with functional calls export to the same graph; the
example of docs/byo-network.md runs as written."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import binarynet.export.patterns as patterns
from binarynet.backends import engine
from binarynet.deploy import export_c
from binarynet.export import ExportError, build_graph, export
from binarynet.graph import bnnfile
from binarynet.graph.ops import Dense
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import csource_targets as ct  # noqa: E402

N_INPUTS = 500
PROBES = 32  # the self-check's random probes in these tests (the default is 256)


@pytest.fixture(autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@torch.no_grad()
def _randomize(model: nn.Module, seed: int) -> nn.Module:
    """Batch-norm statistics that make every unit's threshold non-trivial (γ > 0, so that pools
    after a sign stay exact), in evaluation mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (ExactBatchNorm1d, ShiftBatchNorm1d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 4)
            m.running_var.copy_(torch.rand(c, generator=g) * 20 + 1)
            m.weight.copy_(torch.rand(c, generator=g) + 0.2)
            m.bias.copy_(torch.randn(c, generator=g) * 0.5)
    return model.eval()


def _inputs(shape: tuple[int, ...], n: int = N_INPUTS, seed: int = 7) -> np.ndarray:
    x = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    x[:4] = np.array([0, 127, 128, 255], np.uint8).reshape(4, *([1] * len(shape)))
    return x


def _engine_layout(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def assert_exact_everywhere(model: nn.Module, shape: tuple[int, ...], tmp: Path) -> None:
    """Export ``model``; the engine's, C's and QONNX's scores on 500 inputs equal torch's bit
    for bit (hence the classes)."""
    path = tmp / "model.bnn"
    export(model, path, input_shape=shape, probes=PROBES)
    x = _inputs(shape)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    xe = _engine_layout(x)
    loaded = engine.load(path)
    got = loaded.scores(xe, preprocess=False)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), "engine ≠ torch"
    assert np.array_equal(loaded.predict(xe, preprocess=False), want.argmax(1))
    if ct.have("cc"):
        export_c(path, tmp / "c", "net")
        lines = ct.run_hosted(tmp / "c", "net", xe)
        assert ct.compare(lines, ct.expected_lines(loaded, xe)) == [], "C ≠ engine"
    qonnx = pytest.importorskip("qonnx.core.onnx_exec")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    from binarynet.deploy import export_qonnx

    proto = export_qonnx(path, tmp / "model.onnx", batch_size=N_INPUTS)
    wrapped = cleanup_model(ModelWrapper(proto))
    name = wrapped.graph.input[0].name
    out = qonnx.execute_onnx(
        wrapped, {name: xe.reshape(wrapped.get_tensor_shape(name)).astype(np.float32)}
    )
    scores = out[wrapped.graph.output[0].name].reshape(want.shape)
    assert np.array_equal(scores.view(np.uint32), want.view(np.uint32)), "QONNX ≠ torch"


# --------------------------------------------------------------------------------------------
# The four models of the trial, and a chain written as a plain nn.Module
# --------------------------------------------------------------------------------------------


def _mlp_layers(hidden: int = 24) -> list[nn.Module]:
    return [
        FixedPointInput(),
        nn.Flatten(),
        BinaryLinear(64, hidden, binarize_input=False),
        ExactBatchNorm1d(hidden),
        BinaryActivation(),
        BinaryLinear(hidden, 10, binarize_input=False),
        ExactBatchNorm1d(10),
    ]


class Negated(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -super().forward(x)


class Residual(nn.Sequential):
    """Bi-Real Net's block: a binary layer + batch norm with the real-valued shortcut."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + x


class XnorLinear(BinaryLinear):
    """XNOR-Net: the binary product times a learned per-channel α."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = nn.Parameter(torch.rand(self.out_features) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.alpha


class PlainChain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = FixedPointInput()
        self.fc1 = BinaryLinear(64, 24, binarize_input=False)
        self.bn1 = ExactBatchNorm1d(24)
        self.act = BinaryActivation()
        self.fc2 = BinaryLinear(24, 10, binarize_input=False)
        self.bn2 = ExactBatchNorm1d(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.fc2(self.act(self.bn1(self.fc1(self.inp(x).flatten(1))))))


def test_negated_sequential_is_refused_with_one_line() -> None:
    model = _randomize(Negated(*_mlp_layers()), 1)
    with pytest.raises(ExportError) as info:
        build_graph(model, (8, 8))
    message = str(info.value)
    assert "\n" not in message
    assert re.match(
        r"export: cannot represent 'neg' \(model: Negated, test_byo\.py:\d+\) exactly in a "
        r"\.bnn graph: the class scores must be the last layer's integers \(\+ bias\)·scale \+ "
        r"shift .*, and this op comes after that; supported: FixedPointInput",
        message,
    ), message


def test_residual_block_is_refused_with_one_line() -> None:
    block = Residual(
        BinaryActivation(), BinaryLinear(24, 24, binarize_input=False), ExactBatchNorm1d(24)
    )
    layers = _mlp_layers()
    model = _randomize(nn.Sequential(*layers[:4], block, *layers[4:]), 2)
    with pytest.raises(ExportError) as info:
        build_graph(model, (8, 8))
    message = str(info.value)
    assert "\n" not in message
    assert re.match(
        r"export: cannot represent 'add' \(model\.4: Residual, test_byo\.py:\d+\) exactly in a "
        r"\.bnn graph: it combines 2 computed values \(a residual shortcut",
        message,
    ), message


def test_xnor_alpha_before_a_sign_exports_exactly(tmp_path: Path) -> None:
    """α·y → batch norm → sign is still monotone in y: one exact threshold."""
    layers = _mlp_layers()
    layers[2] = XnorLinear(64, 24, binarize_input=False)
    model = _randomize(nn.Sequential(*layers), 3)
    assert_exact_everywhere(model, (8, 8), tmp_path)


def test_xnor_alpha_before_the_scores_is_refused_with_one_line() -> None:
    layers = _mlp_layers()
    layers[5] = XnorLinear(24, 10, binarize_input=False)
    model = _randomize(nn.Sequential(*layers), 4)
    with pytest.raises(ExportError) as info:
        build_graph(model, (8, 8))
    message = str(info.value)
    assert re.match(
        r"export: cannot represent 'mul' \(model\.5: XnorLinear, test_byo\.py:\d+\) exactly in "
        r"a \.bnn graph: .*this extra step before the batch norm",
        message,
    ), message


def test_a_block_used_twice_exports_twice(tmp_path: Path) -> None:
    block = nn.Sequential(BinaryLinear(24, 24, binarize_input=False), ExactBatchNorm1d(24))
    layers = _mlp_layers()
    model = _randomize(nn.Sequential(*layers[:5], block, BinaryActivation(), block, *layers[4:]), 5)
    graph, tensors = build_graph(model, (8, 8), probes=PROBES)
    dense = [op for op in graph.ops if isinstance(op, Dense)]
    assert len(dense) == 4
    assert np.array_equal(tensors[dense[1].weight], tensors[dense[2].weight])
    assert_exact_everywhere(model, (8, 8), tmp_path)


def test_a_chain_written_as_a_plain_module_exports(tmp_path: Path) -> None:
    model = _randomize(PlainChain(), 6)
    assert_exact_everywhere(model, (8, 8), tmp_path)
    graph, _ = build_graph(model, (8, 8), probes=PROBES)
    assert [op.source for op in graph.ops] == ["fc1", "act", "fc2", None]


def test_a_deliberately_wrong_export_is_caught_by_the_self_check(monkeypatch, tmp_path) -> None:
    """A pattern that maps batch norm's scale to its negation (a wrong graph, as walking the
    module tree made) is caught before anything is written."""
    model = _randomize(PlainChain(), 7)
    real = patterns._Walk._elementwise

    def forgetful(self, node, op, x, args):
        if op == "mul" and x.kind == "int":  # the batch norm's scale …
            step = patterns.Step("mul", -self._channel_const(node, args[1], x), node)
            return patterns.replace(x, steps=(*x.steps, step))  # … negated: a wrong graph
        return real(self, node, op, x, args)

    monkeypatch.setattr(patterns._Walk, "_elementwise", forgetful)
    with pytest.raises(ExportError) as info:
        export(model, tmp_path / "wrong.bnn", input_shape=(8, 8), probes=PROBES)
    assert re.match(
        r"export: self-check failed: the exported graph's scores differ from the torch model's "
        r"on \d+ of the probe inputs \(first: border probe 0, class \d+: torch .*, graph .*\); "
        r"nothing was written",
        str(info.value),
    ), str(info.value)
    assert not (tmp_path / "wrong.bnn").exists()


# --------------------------------------------------------------------------------------------
# The messages that name the fix
# --------------------------------------------------------------------------------------------


def _conv_stack(*middle: nn.Module) -> nn.Sequential:
    return nn.Sequential(
        FixedPointInput(),
        BinaryConv2d(1, 8, 3, padding=1, binarize_input=False),
        *middle,
        nn.Flatten(),
        BinaryLinear(8 * 4 * 4, 10, binarize_input=False),
        ExactBatchNorm1d(10),
    )


def test_binarize_input_after_batch_norm_exports(tmp_path: Path) -> None:
    """A layer that binarizes its own input can follow batch-normalized values."""
    model = nn.Sequential(
        FixedPointInput(),
        nn.Flatten(),
        BinaryLinear(64, 24, binarize_input=False),
        ExactBatchNorm1d(24),
        BinaryLinear(24, 10, binarize_input=True),
        ExactBatchNorm1d(10),
    )
    assert_exact_everywhere(_randomize(model, 8), (8, 8), tmp_path)


def test_pooling_after_the_sign_is_an_and_or_of_bits(tmp_path: Path) -> None:
    model = _randomize(_conv_stack(ExactBatchNorm2d(8), BinaryActivation(), nn.MaxPool2d(2)), 9)
    graph, _ = build_graph(model, (1, 8, 8), probes=PROBES)
    assert [op.type for op in graph.ops[:3]] == ["conv2d", "maxpool2d", "threshold"]
    assert_exact_everywhere(model, (1, 8, 8), tmp_path)


def test_pooling_after_a_falling_sign_is_refused() -> None:
    model = _randomize(_conv_stack(ExactBatchNorm2d(8), BinaryActivation(), nn.MaxPool2d(2)), 10)
    with torch.no_grad():
        model[2].weight[[1, 5]] = -1.0
    with pytest.raises(ExportError, match=r"'max_pool2d' \(model\.4: MaxPool2d.*channels \[1, 5\]"):
        build_graph(model, (1, 8, 8))


def test_torch_sign_exports_where_no_value_is_zero_and_is_refused_where_one_is() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(*_mlp_layers())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n = self.net
            h = torch.sign(n[3](n[2](n[0](x).flatten(1))))
            return n[6](n[5](h))

    model = _randomize(Functional(), 11)
    build_graph(model, (8, 8), probes=PROBES)
    with torch.no_grad():  # a running mean of 0 and no shift: y = 0 gives exactly 0
        model.net[3].running_mean[2] = 0.0
        model.net[3].bias[2] = 0.0
    with pytest.raises(
        ExportError,
        match=r"torch\.sign gives 0 where its input is 0, and on "
        r"channel 2",
    ):
        build_graph(model, (8, 8))


# --------------------------------------------------------------------------------------------
# The property: three ways to write one chain
# --------------------------------------------------------------------------------------------


def _chain_spec(data: st.DataObject) -> dict:
    conv = data.draw(st.booleans(), label="conv")
    return {
        "conv": conv,
        "channels": data.draw(st.integers(1, 9), label="channels"),
        "pool": conv and data.draw(st.sampled_from(["none", "before", "after"]), label="pool"),
        "hidden": [
            data.draw(st.integers(1, 70), label="h")
            for _ in range(data.draw(st.integers(0, 2), label="depth"))
        ],
        "bias": data.draw(st.booleans(), label="bias"),
        "seed": data.draw(st.integers(0, 2**16), label="seed"),
    }


def _sequential(spec: dict) -> nn.Sequential:
    layers: list[nn.Module] = [FixedPointInput()]
    if spec["conv"]:
        c = spec["channels"]
        layers.append(BinaryConv2d(1, c, 3, padding=1, bias=spec["bias"], binarize_input=False))
        if spec["pool"] == "before":
            layers.append(nn.MaxPool2d(2))
        layers += [ExactBatchNorm2d(c), BinaryActivation()]
        if spec["pool"] == "after":
            layers.append(nn.MaxPool2d(2))
        width = c * (4 * 4 if spec["pool"] != "none" else 8 * 8)
    else:
        width = 64
    layers.append(nn.Flatten())
    for h in spec["hidden"]:
        layers += [BinaryLinear(width, h, binarize_input=False), ExactBatchNorm1d(h)]
        layers.append(BinaryActivation())
        width = h
    layers += [
        BinaryLinear(width, 10, bias=spec["bias"], binarize_input=False),
        ExactBatchNorm1d(10),
    ]
    return nn.Sequential(*layers)


class _ModuleStyle(nn.Module):
    """The same layers as attributes, chained by a forward."""

    def __init__(self, seq: nn.Sequential) -> None:
        super().__init__()
        self.layers = nn.ModuleList(seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class _FunctionalStyle(nn.Module):
    """The same parameters, with functional calls for what has a function: binarize, torch.sign
    (no exact zeros occur with these statistics), F.max_pool2d, x.flatten(1)."""

    def __init__(self, seq: nn.Sequential) -> None:
        super().__init__()
        self.layers = nn.ModuleList(seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            if isinstance(layer, BinaryActivation):
                x = torch.sign(x) if i % 2 else binarize(x)
            elif isinstance(layer, nn.MaxPool2d):
                x = F.max_pool2d(x, 2)
            elif isinstance(layer, nn.Flatten):
                x = x.flatten(1)
            else:
                x = layer(x)
        return x


def _canonical(model: nn.Module, shape: tuple[int, ...]) -> tuple[list, dict]:
    graph, tensors = build_graph(model, shape, probes=PROBES)
    ops = [{k: v for k, v in op.to_json().items() if k != "source"} for op in graph.ops]
    return ops, tensors


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_three_styles_of_one_chain_export_to_the_same_graph(data: st.DataObject) -> None:
    spec = _chain_spec(data)
    torch.manual_seed(spec["seed"])
    seq = _randomize(_sequential(spec), spec["seed"])
    shape = (1, 8, 8) if spec["conv"] else (8, 8)
    want_ops, want_tensors = _canonical(seq, shape)
    x = _inputs(shape, 64, spec["seed"])
    with torch.no_grad():
        want = seq(torch.from_numpy(x)).numpy()
    for style in (_ModuleStyle(seq), _FunctionalStyle(seq)):
        ops, tensors = _canonical(style, shape)
        assert ops == want_ops, type(style).__name__
        assert tensors.keys() == want_tensors.keys()
        assert all(np.array_equal(tensors[k], want_tensors[k]) for k in tensors)
        with torch.no_grad():
            assert np.array_equal(style(torch.from_numpy(x)).numpy(), want)
    bnn = bnnfile.validate(*build_graph(seq, shape, self_check=False))
    got = engine.Model(bnn).scores(_engine_layout(x), preprocess=False)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


# --------------------------------------------------------------------------------------------
# The documented example
# --------------------------------------------------------------------------------------------


def test_the_documented_example_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    text = (ROOT / "docs" / "byo-network.md").read_text()
    block = re.search(r"## A complete example.*?```python\n(.*?)```", text, re.S)
    assert block is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "byo_example"}
    exec(compile(block.group(1), "byo-network.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert printed.strip() == str(
        ["conv2d", "maxpool2d", "threshold", "conv2d", "maxpool2d", "threshold", "dense", "scores"]
    )
    model = _randomize(namespace["model"], 12)
    assert_exact_everywhere(model, (1, 28, 28), tmp_path)


# --------------------------------------------------------------------------------------------
# The command line: other files given to `binarynet export`, `binarynet eval` on any fitting model
# --------------------------------------------------------------------------------------------


def test_export_command_explains_torch_save_and_state_dict_files(tmp_path: Path, capsys) -> None:
    from binarynet.cli import main

    model = PlainChain()
    pickled, weights = tmp_path / "model.pt", tmp_path / "weights.pt"
    torch.save(model, pickled)
    torch.save(model.state_dict(), weights)
    for path, what in (
        (
            pickled,
            r"holds pickled Python objects \(a torch\.save\(model\) file\?\), which "
            "binarynet does not unpickle",
        ),
        (weights, "is a bare state_dict: weights without the model they belong to"),
    ):
        assert main(["export", str(path), str(tmp_path / "out.bnn")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert re.search(what, err), err
        assert "binarynet.export.export(model, 'model.bnn', input_shape=...)" in err
        assert "or train it with binarynet train" in err
        assert not (tmp_path / "out.bnn").exists()


def test_eval_takes_a_one_channel_convnet_and_a_flat_mlp_on_mnist(tmp_path: Path, capsys) -> None:
    from binarynet.cli import main

    conv = _randomize(
        nn.Sequential(
            FixedPointInput(),
            BinaryConv2d(1, 4, 5, stride=3, binarize_input=False),  # 28 → 8
            ExactBatchNorm2d(4),
            BinaryActivation(),
            nn.Flatten(),
            BinaryLinear(4 * 8 * 8, 10, binarize_input=False),
            ExactBatchNorm1d(10),
        ),
        13,
    )
    export(conv, tmp_path / "conv.bnn", input_shape=(1, 28, 28), probes=PROBES)
    flat = _randomize(nn.Sequential(*_mlp_layers()), 14)
    flat[2] = BinaryLinear(784, 24, binarize_input=False)
    export(flat, tmp_path / "flat.bnn", input_shape=(784,), probes=PROBES)
    for name in ("conv", "flat"):
        assert main(["eval", str(tmp_path / f"{name}.bnn")]) == 0
        assert re.match(r"mnist(-sample)? test error: ", capsys.readouterr().out)
    wrong = _randomize(nn.Sequential(*_mlp_layers()), 15)
    export(wrong, tmp_path / "wrong.bnn", input_shape=(8, 8), probes=PROBES)
    assert main(["eval", str(tmp_path / "wrong.bnn")]) == 2
    err = capsys.readouterr().err
    assert re.search(
        r"wrong\.bnn takes images of shape \[8, 8\], but mnist(-sample)?'s are "
        r"\[28, 28\]",
        err,
    ), err
