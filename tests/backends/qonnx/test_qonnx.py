"""QONNX export (binarynet.backends.qonnx.writer): the exported graph, run by qonnx's own executor
after qonnx's cleanup and shape inference, gives the engine's scores bit for bit (hence its classes)
on the fixtures, on torch models with every kind of threshold and on random ``.bnn`` graphs;
what QONNX cannot express is refused with one line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the qonnx extra is not installed")
qonnx = pytest.importorskip("qonnx", reason="the qonnx extra is not installed")
onnx = pytest.importorskip("onnx", reason="the qonnx extra is not installed")

from qonnx.core.datatype import DataType  # noqa: E402
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount  # noqa: E402
from qonnx.transformation.infer_datatypes import InferDataTypes  # noqa: E402
from qonnx.transformation.infer_shapes import InferShapes  # noqa: E402
from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul  # noqa: E402
from qonnx.util.cleanup import cleanup_model  # noqa: E402

from binarynet import cli  # noqa: E402
from binarynet.backends import engine  # noqa: E402
from binarynet.backends.qonnx.writer import threshold_steps, to_qonnx, write_qonnx  # noqa: E402
from binarynet.data import mnist_sample  # noqa: E402
from binarynet.export import build_graph, export_checkpoint  # noqa: E402
from binarynet.graph import bnnfile  # noqa: E402
from binarynet.graph.graph import Graph  # noqa: E402
from binarynet.training.checkpoint import read_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO / "fuzz"))
import bnn_models as bm  # noqa: E402


def run_qonnx(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """``proto`` checked by onnx (its IR version too), cleaned up and shape-inferred by qonnx,
    run by qonnx's executor on uint8 images ``x`` (reshaped to the graph's input); its float32
    scores."""
    onnx.checker.check_model(proto)
    assert proto.ir_version == 8
    model = cleanup_model(ModelWrapper(proto)).transform(InferShapes())
    name = model.graph.input[0].name
    assert model.get_tensor_datatype(name) == DataType["UINT8"]
    shape = model.get_tensor_shape(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. qonnx's "Output shapes disagree"
        out = execute_onnx(model, {name: x.reshape(shape).astype(np.float32)})
    scores = out[model.graph.output[0].name]
    assert scores.dtype == np.float32
    return scores


def assert_same_as_engine(proto: onnx.ModelProto, bnn: Path, x: np.ndarray) -> np.ndarray:
    scores = run_qonnx(proto, x)
    model = engine.load(bnn)
    expected = model.scores(x, preprocess=False)
    np.testing.assert_array_equal(scores, expected)  # bit-identical (inf and −0.0 included)
    assert np.array_equal(np.signbit(scores), np.signbit(expected))
    np.testing.assert_array_equal(scores.argmax(axis=1), model.predict(x, preprocess=False))
    return scores


def _extremes(shape: tuple[int, ...]) -> np.ndarray:
    return np.stack([np.full(shape, v, dtype=np.uint8) for v in (0, 127, 128, 255)])


# --------------------------------------------------------------------------------------------
# The fixtures, from the checkpoint and from the .bnn file
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist_mlp_tiny", "cifar10_convnet_tiny"])
def test_fixture_scores_are_the_engines(name: str, tmp_path: Path) -> None:
    checkpoint = FIXTURES / f"{name}.pt"
    bnn = tmp_path / "model.bnn"
    export_checkpoint(checkpoint, bnn)
    shape = engine.load(bnn).input_shape
    if name.startswith("mnist"):
        x = np.concatenate([mnist_sample().test.images[:28], _extremes(shape)])
    else:
        rng = np.random.default_rng(3)
        x = np.concatenate([rng.integers(0, 256, (12, *shape), dtype=np.uint8), _extremes(shape)])
    from_bnn = write_qonnx(bnn, tmp_path / "a.onnx", batch_size=len(x))
    ckpt = read_checkpoint(checkpoint)
    graph, tensors = build_graph(ckpt.model, model=ckpt.config["model"])
    from_checkpoint = to_qonnx(graph, tensors, batch_size=len(x))
    assert from_bnn.graph == from_checkpoint.graph  # the same graph either way
    assert onnx.load(tmp_path / "a.onnx") == from_bnn
    assert_same_as_engine(from_bnn, bnn, x)
    if name.startswith("mnist"):  # and it classifies digits
        labels = mnist_sample().test.labels[:28]
        assert (run_qonnx(from_bnn, x)[:28].argmax(axis=1) == labels).mean() > 0.5


def test_graph_structure(tmp_path: Path) -> None:
    """Weights through BipolarQuant, thresholds as bipolar MultiThresholds, the input NHWC."""
    bnn = tmp_path / "c.bnn"
    export_checkpoint(FIXTURES / "cifar10_convnet_tiny.pt", bnn)
    proto = write_qonnx(bnn, tmp_path / "c.onnx")
    nodes = proto.graph.node
    quantized = {n.output[0] for n in nodes if n.op_type == "BipolarQuant"}
    layers = [n for n in nodes if n.op_type in ("Conv", "MatMul")]
    assert len(layers) == 9 and all(n.input[1] in quantized for n in layers)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    for n in nodes:
        if n.op_type == "BipolarQuant":
            assert set(np.unique(inits[n.input[0]])) <= {-1.0, 1.0}
            assert n.domain == "qonnx.custom_op.general" and inits[n.input[1]] == 1.0
    thresholds = [n for n in nodes if n.op_type == "MultiThreshold"]
    assert len(thresholds) == 8
    for n in thresholds:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        assert attrs == {"out_dtype": b"BIPOLAR", "out_scale": 2.0, "out_bias": -1.0}
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 32, 32, 3] and nodes[0].op_type == "Transpose"
    model = ModelWrapper(proto)
    assert model.get_tensor_layout("image") == ["N", "H", "W", "C"]
    assert model.get_tensor_datatype("image") == DataType["UINT8"]
    add = next(n for n in nodes if n.op_type == "Add")  # x̃ = p − zp, an integer for FINN
    assert model.get_tensor_datatype(add.input[1]) == DataType["INT9"]
    for n in nodes:  # each pool behind its threshold, on ±1, with FINN's attributes
        if n.op_type == "MaxPool":
            assert model.find_producer(n.input[0]).op_type == "MultiThreshold"
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            assert attrs["pads"] == [0, 0, 0, 0] and attrs["ceil_mode"] == 0
    assert sum(n.op_type == "MaxPool" for n in nodes) == 3
    assert [n.op_type for n in nodes[-3:]] == ["Mul", "Mul", "Add"]  # scores (no bias)


def _finn_style_lowering(model: ModelWrapper) -> ModelWrapper:
    """What FINN's step_qonnx_to_finn and step_streamline do to binary layers, with qonnx's own
    transformations: BipolarQuant weights folded into ±1 initializers annotated BIPOLAR (FINN's
    FoldQuantWeights), convolutions lowered to Im2Col + MatMul, MatMuls on bipolar inputs and
    weights turned into XnorPopcountMatMul (bits 0/1 for −1/+1) plus the K − 2·popcount fix."""
    for node in [n for n in model.graph.node if n.op_type == "BipolarQuant"]:
        w = model.get_initializer(node.input[0])
        model.set_initializer(node.output[0], np.where(w >= 0, 1.0, -1.0).astype(np.float32))
        model.set_tensor_datatype(node.output[0], DataType["BIPOLAR"])
        model.graph.node.remove(node)
    for t in (InferShapes(), InferDataTypes(), LowerConvsToMatMul(), InferShapes()):
        model = model.transform(t)
    model = model.transform(InferDataTypes()).transform(ConvertBipolarMatMulToXnorPopcount())
    assert any(n.op_type == "XnorPopcountMatMul" for n in model.graph.node)
    return model


@pytest.mark.parametrize("name", ["mnist_mlp_tiny", "cifar10_convnet_tiny"])
def test_finn_style_xnor_lowering(name: str, tmp_path: Path) -> None:
    """The MLP stays bit-exact through FINN's XNOR-popcount form. A padded binary convolution
    does not: Im2Col pads the ±1 activations with 0 (training's value), which the 0/1 bit
    encoding then reads as −1: why FINN needs pad_value=-1 (docs/fpga.md)."""
    bnn = tmp_path / "m.bnn"
    export_checkpoint(FIXTURES / f"{name}.pt", bnn)
    model = _finn_style_lowering(cleanup_model(ModelWrapper(write_qonnx(bnn, tmp_path / "m.onnx"))))
    if name.startswith("mnist"):
        x = mnist_sample().test.images[:6]
    else:
        x = np.random.default_rng(5).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    shape = model.get_tensor_shape(iname)
    scores = np.concatenate(
        [execute_onnx(model, {iname: xi.reshape(shape).astype(np.float32)})[oname] for xi in x]
    )
    expected = engine.load(bnn).scores(x)
    if name.startswith("mnist"):
        np.testing.assert_array_equal(scores, expected)
    else:
        assert not np.array_equal(scores, expected)


# --------------------------------------------------------------------------------------------
# Torch models with γ < 0, γ = 0, ties, biases, padding, pools and odd sizes (test_engine's)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "odd-stressed-std",
        "odd-stressed-shift",
        "mlp-stressed-shift",
        "cifar-stressed-std",
        "pm1-stressed-std",  # padded with −1 (Pad), down-sets behind pools
        "pp1-trained-shift",  # padded with +1
    ],
)
def test_stressed_torch_models(name: str) -> None:
    from torch_cases import get_case

    case = get_case(name)
    x = np.concatenate([case.x[:12], case.x[-4:]])  # the last four: constant images
    proto = to_qonnx(*_graph(case.path), batch_size=len(x))
    if name.startswith("odd"):  # a down-set channel behind a pool: no Mul, only thresholds
        g, t = _graph(case.path)
        values = g.infer(bnnfile.tensor_table(t))
        assert any(
            np.any(threshold_steps(t[op.lo], t[op.hi], values[i].bound)[0] < 0)
            for i, op in enumerate(g.ops)
            if op.type == "threshold"
        )
        assert [n.op_type for n in proto.graph.node].count("Mul") == 2  # the scores' two
    scores = assert_same_as_engine(proto, case.path, x)
    torch_scores = np.concatenate([case.scores[:12], case.scores[-4:]])
    np.testing.assert_array_equal(scores, torch_scores)


@pytest.mark.parametrize(
    "name", ["pm1-trained-std", "pm1-epoch-std", "pm1-stressed-shift", "pp1-trained-std"]
)
def test_pm1_padded_torch_models_at_batch_1(name: str) -> None:
    """At batch 1, a −1 padding that reaches every channel as −1 is written in FINN's XNOR
    form (Im2Col + XnorPopcountMatMul on bits); the others with Pad. Both exact."""
    from torch_cases import get_case

    case = get_case(name)
    proto = to_qonnx(*_graph(case.path))
    ops = {n.op_type for n in proto.graph.node}
    if name in ("pm1-trained-std", "pm1-epoch-std"):  # trained from γ = 1: up-sets only
        assert {"Im2Col", "XnorPopcountMatMul"} <= ops and "Pad" not in ops
    else:
        assert "Pad" in ops
    for j in (0, 5, len(case.x) - 1):
        scores = assert_same_as_engine(proto, case.path, case.x[j : j + 1])
        np.testing.assert_array_equal(scores, case.scores[j : j + 1])


def _graph(path: Path) -> tuple[Graph, dict[str, np.ndarray]]:
    bnn = bnnfile.load(path)
    return bnn.graph, bnn.tensors


# --------------------------------------------------------------------------------------------
# Random .bnn graphs (fuzz/bnn_models.py): odd sizes, K not a multiple of 64, strides, padding
# wider than the kernel, pools, every zero point, thresholds of every kind
# --------------------------------------------------------------------------------------------


def _inexpressible(graph: dict, tensors: dict[str, np.ndarray], spec_bound: list[int]) -> bool:
    """Whether some threshold channel is neither an up-set nor a down-set nor constant on the
    reachable range (written from the op's definition: +1 iff lo ≤ y ≤ hi, |y| ≤ R)."""
    thresholds = [op for op in graph["ops"] if op["type"] == "threshold"]
    for op, bound in zip(thresholds, spec_bound, strict=True):
        for lo, hi in zip(tensors[op["lo"]].tolist(), tensors[op["hi"]].tolist(), strict=True):
            reachable = [y for y in (-bound, bound) if lo <= y <= hi]
            inside = lo <= hi and lo <= bound and hi >= -bound
            if inside and not reachable:
                return True
    return False


@pytest.mark.parametrize("seeds", [range(0, 50), range(50, 100), range(100, 150)])
def test_random_graphs(seeds: range, tmp_path: Path) -> None:
    exported = refused = 0
    for seed in seeds:
        graph, tensors = bm.random_model(
            bm.RngChooser(np.random.default_rng(seed)), pad_values=True
        )
        path = tmp_path / f"{seed}.bnn"
        bnnfile.save(path, graph, tensors)
        bnn = bnnfile.load(path)
        bounds = [
            bnn.values[i].bound for i, op in enumerate(bnn.graph.ops) if op.type == "threshold"
        ]
        x = bm.random_input(np.random.default_rng(seed), bnn.graph.input.shape, 3)
        if _inexpressible(graph, tensors, bounds):
            with pytest.raises(ValueError, match=r"strictly inside the reachable range"):
                to_qonnx(bnn.graph, bnn.tensors)
            refused += 1
            continue
        with np.errstate(over="ignore"):  # extreme random scales overflow to ±inf, in both
            assert_same_as_engine(to_qonnx(bnn.graph, bnn.tensors, batch_size=3), path, x)
        exported += 1
    assert exported >= 5 and refused >= 5, (exported, refused)


def test_threshold_steps_cover_every_kind() -> None:
    """[y ≥ t] agrees with f·(lo ≤ y ≤ hi) on every reachable integer, ties (y = t) included:
    the down-sets come out negated (f = −1)."""
    r = 6
    i32 = np.iinfo(np.int32)
    cases = [
        (2, i32.max),  # up-set
        (-3, r),  # up-set, hi at the bound
        (i32.min, -1),  # down-set
        (-r, 4),  # down-set, lo at the bound
        (i32.min, i32.max),  # always +1
        (-r, r),  # always +1 on the reachable range
        (i32.max, i32.min),  # never (lo > hi)
        (r + 1, i32.max),  # never: beyond the range
        (i32.min, -r - 1),  # never
    ]
    lo = np.array([c[0] for c in cases], np.int32)
    hi = np.array([c[1] for c in cases], np.int32)
    flip, t = threshold_steps(lo, hi, r)
    assert flip.tolist() == [1, 1, -1, -1, 1, 1, 1, 1, 1]
    y = np.arange(-r, r + 1, dtype=np.float32)[:, None]
    expected = np.where((lo.astype(np.int64) <= y) & (y <= hi.astype(np.int64)), 1, -1)
    np.testing.assert_array_equal(np.where(y >= t, 1, -1), flip * expected)
    assert np.all(np.abs(t) <= r + 1)  # exact in float32, inside FINN's clipping range
    with pytest.raises(ValueError, match=r"op 3: channel 1 is \+1 iff -2 ≤ y ≤ 2"):
        threshold_steps(np.array([0, -2], np.int32), np.array([r, 2], np.int32), r, "op 3")


# --------------------------------------------------------------------------------------------
# Refusals, the command line, no torch
# --------------------------------------------------------------------------------------------


def test_gcn_zca_preprocessor_is_refused_unless_asked(tmp_path: Path) -> None:
    bnn = tmp_path / "c.bnn"
    export_checkpoint(FIXTURES / "cifar10_convnet_tiny.pt", bnn)
    graph, tensors = _graph(bnn)
    gcn = dataclasses.replace(graph, preprocess={"kind": "gcn-zca", "version": 1})
    with pytest.raises(ValueError, match=r"'gcn-zca' preprocessor .*--preprocess pixels"):
        to_qonnx(gcn, tensors)
    assert to_qonnx(gcn, tensors, preprocessed_input=True) == to_qonnx(graph, tensors)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        to_qonnx(graph, tensors, batch_size=0)


def test_export_command(tmp_path: Path, capsys) -> None:
    checkpoint = FIXTURES / "mnist_mlp_tiny.pt"
    out = tmp_path / "m.onnx"
    assert cli.main(["export", str(checkpoint), str(out), "--format", "qonnx"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: QONNX graph" in printed and "input [1, 784]" in printed
    bnn = tmp_path / "m.bnn"
    assert cli.main(["export", str(checkpoint), str(bnn)]) == 0  # the default format: bnn
    assert bnnfile.load(bnn).graph.num_classes == 10
    again = tmp_path / "again.onnx"
    assert cli.main(["export", str(bnn), str(again), "--format", "qonnx"]) == 0
    assert onnx.load(again).graph == onnx.load(out).graph


def test_export_command_errors(tmp_path: Path, capsys) -> None:
    graph, tensors = bm.random_model(bm.RngChooser(np.random.default_rng(0)))
    op = next(o for o in graph["ops"] if o["type"] == "threshold")
    tensors[op["lo"]][:] = -1  # an interval strictly inside the reachable range
    tensors[op["hi"]][:] = 1
    bnn = tmp_path / "inner.bnn"
    bnnfile.save(bnn, graph, tensors)
    out = tmp_path / "inner.onnx"
    assert cli.main(["export", str(bnn), str(out), "--format", "qonnx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: op ") and "MultiThreshold expresses only" in err
    assert err.count("\n") == 1 and not out.exists()
    assert cli.main(["export", str(tmp_path / "nope.bnn"), str(out), "--format", "qonnx"]) == 2
    assert "not found" in capsys.readouterr().err and not out.exists()


def test_bnn_export_needs_no_torch(tmp_path: Path) -> None:
    bnn = tmp_path / "m.bnn"
    export_checkpoint(FIXTURES / "mnist_mlp_tiny.pt", bnn)
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch fails\n"
        "from binarynet.backends.qonnx.writer import write_qonnx\n"
        "write_qonnx(sys.argv[1], sys.argv[2])\n"
    )
    out = tmp_path / "m.onnx"
    result = subprocess.run(
        [sys.executable, "-c", code, str(bnn), str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert onnx.load(out).graph.output[0].name == "scores"
