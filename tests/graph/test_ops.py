"""binarynet.graph.ops: the op is the unit (roles, checks, sizes, costs, the visitor dispatch)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from binarynet.backends.engine import model as engine_model
from binarynet.export import build_graph
from binarynet.graph import bnnfile, ops
from binarynet.graph.graph import Graph
from binarynet.graph.ops import OP_TYPES, Conv2d, Dense, LayerOp, Role
from binarynet.graph.values import GraphError, InputSpec, ValueInfo
from binarynet.graph.visitor import GraphVisitor
from torch_cases import tiny_convnet, tiny_mlp


def _graph(model, shape):
    graph, tensors = build_graph(model, shape)
    return graph, tensors, graph.infer(bnnfile.tensor_table(tensors))


def test_every_op_type_has_a_role_and_a_visitor_method():
    for name, cls in OP_TYPES.items():
        assert isinstance(cls.role, Role), name
        assert hasattr(GraphVisitor, f"visit_{name}"), name
        assert (cls.role is Role.LAYER) == issubclass(cls, LayerOp), name


def test_the_file_format_owns_its_names_and_graph_errors_are_value_errors():
    for name in ("FORMAT", "VERSION", "BNNFileError"):
        assert hasattr(bnnfile, name) and not hasattr(ops, name), name
    assert issubclass(bnnfile.BNNFileError, GraphError) and issubclass(GraphError, ValueError)
    with pytest.raises(GraphError, match="'ops' must be a list"):
        Graph.from_json(
            {
                "input": {
                    "layout": "NF",
                    "shape": [3],
                    "dtype": "uint8",
                    "zero_point": 128,
                    "scale": 2**-7,
                },
                "num_classes": 2,
                "ops": [],
            }
        )
    with pytest.raises(bnnfile.BNNFileError, match="not a binarynet model"):
        bnnfile.graph_from_json({"format": "onnx"})


def test_a_back_end_without_an_op_fails_loudly():
    graph, _, _ = _graph(tiny_convnet(), (3, 4, 4))

    class Partial(GraphVisitor[str]):
        def visit_conv2d(self, op, x, y):
            return f"conv {op.out_channels}: {x.describe()} -> {y.describe()}"

    values = graph.infer(bnnfile.tensor_table(_graph(tiny_convnet(), (3, 4, 4))[1]))
    assert (
        graph.ops[0].accept(Partial(), values[0], values[1]) == "conv 4: u8[4×4×3] -> int32[4×4×4]"
    )
    pool = graph.ops[1]
    with pytest.raises(NotImplementedError, match=r"'maxpool2d' op .* not supported by Partial"):
        pool.accept(Partial(), values[1], values[2])


def test_layer_ops_own_their_reduction_size_and_weight_layout():
    graph, tensors, values = _graph(tiny_convnet(), (3, 4, 4))
    layers = [(op, values[i]) for i, op in enumerate(graph.ops) if op.role is Role.LAYER]
    (c1, x1), (c2, x2), (d3, x3) = layers
    assert isinstance(c1, Conv2d) and isinstance(d3, Dense)
    assert c1.reduction_size(x1) == 27 and c1.row_bits(x1) == 27  # u8: one row over all taps
    assert c2.reduction_size(x2) == 36 and c2.row_bits(x2) == 4  # bits: a group per tap
    assert d3.reduction_size(x3) == 20 and d3.row_bits(x3) == 5  # flattened [2, 2, 5] bits
    assert c2.weight_signs(x2, tensors).shape == (5, 3, 3, 4)
    assert d3.weight_signs(x3, tensors).shape == (10, 2, 2, 5)
    total = sum(op.deployed_bytes(tensors) for op in graph.ops)
    assert total == sum(t.nbytes for t in tensors.values())


def test_op_value_checks():
    graph, tensors, values = _graph(tiny_mlp(), (4, 4))
    graph.check_values(values, tensors)
    bad = dict(tensors)
    dense = graph.ops[0]
    bad[dense.weight] = tensors[dense.weight] | np.uint64(1 << 63)  # a padding bit (K = 16)
    with pytest.raises(GraphError, match=r"op 0 \(dense, torch module '2'\).*padding"):
        graph.check_values(values, bad)
    scores = graph.ops[-1]
    bad = dict(tensors)
    bad[scores.scale] = np.full_like(tensors[scores.scale], np.inf)
    with pytest.raises(GraphError, match="is not finite"):
        graph.check_values(values, bad)


def test_op_costs():
    graph, tensors, values = _graph(tiny_mlp(), (4, 4))
    costs = [op.cost(values[i], values[i + 1], tensors) for i, op in enumerate(graph.ops)]
    assert [c.macs for c in costs] == [{"int8": 128}, {}, {"binary": 80}, {}]
    assert [c.ops for c in costs] == [{}, {"threshold": 8}, {}, {"affine": 10}]
    assert sum(c.deployed_bytes for c in costs) == 288
    assert costs[1].activation == (32, 8)  # 8 ±1 values: float32, then one packed word


def test_the_engine_planner_is_a_visitor_that_groups_by_role():
    graph, tensors, values = _graph(tiny_convnet(), (3, 4, 4))
    stages = engine_model._Planner(graph, values, tensors).plan()
    assert [s.layer.type for s in stages] == ["conv2d", "conv2d", "dense"]
    assert [len(s.pools) for s in stages] == [1, 0, 0]
    assert [type(s.run).__name__ for s in stages] == ["_ConvU8", "_ConvBits", "_DenseBits"]
    assert stages[0].run.workspace == 4 * 4 * 27  # the uint8 convolution's im2col patches
    assert math.prod(stages[-1].y.shape) == 10


def test_summary_of_a_model_that_cannot_be_deployed():
    from torch import nn

    from binarynet.analysis.summary import summary
    from binarynet.training.nn import BinaryLinear

    model = nn.Sequential(nn.Flatten(), BinaryLinear(16, 10), nn.BatchNorm1d(10))
    with pytest.raises(ValueError, match=r"cannot be deployed.*FixedPointInput"):
        summary(model, (4, 4))


def test_graph_stages_follow_the_roles():
    import dataclasses

    graph, _, _ = _graph(tiny_convnet(), (3, 4, 4))
    spans = graph.stages()
    assert [(s.layer, s.pools, s.tail) for s in spans] == [(0, (1,), 2), (3, (), 4), (5, (), 6)]
    assert [graph.ops[s.tail].role for s in spans] == [Role.ACTIVATION] * 2 + [Role.SCORES]
    headless = dataclasses.replace(graph, ops=graph.ops[1:])  # starts with the pool
    with pytest.raises(GraphError, match=r"op 0 \(maxpool2d.*\) does not follow a layer"):
        headless.stages()
    tailless = dataclasses.replace(graph, ops=graph.ops[:2])  # conv, pool, then nothing
    with pytest.raises(GraphError, match="ends without an activation or scores"):
        tailless.stages()


def test_u8_offset_is_minus_zero_point_times_the_weight_sum():
    graph, tensors, values = _graph(tiny_convnet(), (3, 4, 4))
    conv = graph.ops[0]
    w = np.where(conv.weight_signs(values[0], tensors), -1, 1).reshape(conv.outputs, -1)
    for zp in (0, 128, 255):
        want = -zp * w.sum(axis=1)
        np.testing.assert_array_equal(conv.u8_offset(values[0], tensors, zp), want)


def test_conv2d_pad_value_json():
    """pad_value is written only when nonzero (zero-padded files stay byte-identical), read
    back, range-checked, and refused on the uint8 input."""
    zero = Conv2d(4, (3, 3), (1, 1), (1, 1), "w")
    assert "pad_value" not in zero.to_json()
    assert list(zero.to_json()) == [
        "type",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "weight",
    ]
    minus = Conv2d(4, (3, 3), (1, 1), (1, 1), "w", None, -1)
    obj = minus.to_json()
    assert obj["pad_value"] == -1
    assert Conv2d.from_json(obj, "op 2") == minus
    assert Conv2d.from_json(zero.to_json(), "op 2") == zero
    with pytest.raises(GraphError, match=r"'pad_value' = 2 is out of range; expected -1..1"):
        Conv2d.from_json({**obj, "pad_value": 2}, "op 2")
    spec = InputSpec((5, 5, 3), 128)
    with pytest.raises(GraphError, match=r"pad_value -1 needs bits input, got u8\[5×5×3\]"):
        minus.infer(ValueInfo("u8", (5, 5, 3)), spec, {"w": ("U64", (4, 1))})
    y = minus.infer(ValueInfo("bits", (5, 5, 3)), spec, {"w": ("U64", (4, 3, 3, 1))})
    assert y == ValueInfo("int32", (5, 5, 4), 27)  # R = kh·kw·C, as with zero padding
