"""QONNX export: a ``.bnn`` graph as a QONNX model, for FINN and other QONNX readers.

QONNX is ONNX with a few quantization ops (``BipolarQuant``, ``Quant``, ...) and FINN's
``MultiThreshold``, all in the domain ``qonnx.custom_op.general``; FINN compiles such graphs into
FPGA dataflow accelerators. This back-end is a :class:`binarynet.graph.visitor.GraphVisitor`: one
``visit_<type>`` per op writes that op's ONNX nodes. Only NumPy and the ``onnx`` package are
needed (``pip install 'binarynet[qonnx]'``, which also brings qonnx and onnxruntime to run it).

The graph
---------
Every tensor is float32 holding the values of :mod:`binarynet.graph.ops` exactly (integers of
magnitude below 2²⁴ and ±1 are exact in float32; every partial sum of a layer is bounded by the
same reachable bound R < 2²⁴, so a float MatMul or Conv computes the integer y exactly in any
summation order):

- **input**: the network's uint8 pixels p as float32, annotated ``UINT8`` (the integer input
  FINN expects), batch ``batch_size``: ``[B, F]`` (``F`` the flattened image, C order) when the
  first layer is dense, ``[B, H, W, C]`` (NHWC, the engine's layout) when it is a convolution,
  then a ``Transpose`` to ONNX's NCHW. ``Add(−zero_point)`` gives the engine's x̃ = p − zp.
- **binary layers**: ``MatMul`` / ``Conv`` whose weight is a ±1 float32 initializer through
  ``BipolarQuant`` (scale 1; sign(0) = +1, our convention, though the stored weights are ±1
  already). A convolution's ``pads`` pad with 0, which is exactly training's zero padding: 0
  is the padded pixel's x̃ for the first layer and the third value 0 for ±1 activations, so
  no border correction is needed in this graph. A dense layer after a convolution reads the
  NCHW activations through ``Flatten``, its weight columns permuted from the file's (H, W, C)
  order to (C, H, W).
- **max-pool**: ``MaxPool`` on the integers (no padding, floor mode), as the op does.
- **threshold** (batch norm + sign, ``lo ≤ y ≤ hi`` per channel c) as ``MultiThreshold`` with
  one threshold t_c and ``out_scale = 2``, ``out_bias = −1`` (``out_dtype = BIPOLAR``):
  output 2·[v ≥ t_c] − 1 ∈ {−1, +1}. Over the reachable range |y| ≤ R each channel's interval
  is one of (as the engine classifies them, :mod:`binarynet.export` derives them):

  ===============================  =====  ========  ==========================
  interval on [−R, R]              s_c    t_c       +1 iff
  ===============================  =====  ========  ==========================
  empty, or outside [−R, R]        +1     R + 1     never
  covers [−R, R]                   +1     −R        always
  up-set, hi ≥ R (γ > 0)           +1     lo        y ≥ lo
  down-set, lo ≤ −R (γ < 0)        −1     −hi       −y ≥ −hi ⇔ y ≤ hi
  ===============================  =====  ========  ==========================

  v = s_c·y: a ``Mul`` by the ±1 vector s precedes the ``MultiThreshold`` when some channel is
  a down-set (after the pools: max(y) ≤ hi needs the sign flip after the max, not in the
  weights). An interval strictly inside [−R, R] (neither set; only a hand-made file has one)
  is refused: one threshold cannot express it.
- **scores**: ``Mul(input_scale)``, ``Add(bias)`` (when there is one), ``Mul(scale)``,
  ``Add(shift)``: the four float32 operations of :func:`binarynet.graph.values.affine_eval` in the
  same order, each rounded once, so the output ``scores`` [B, classes] is bit-identical to the
  engine's.

The preprocessor: ``pixels`` is the identity on uint8 images and needs nothing. ``gcn-zca``
(per-image contrast normalisation, a D×D float matrix and a rounding to 8 bits) is not part of
the binary network and not an integer dataflow FINN can build: it is refused, unless
``preprocessed_input=True`` asks for the network alone, fed the images the preprocessor made.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

import binarynet
from binarynet.atomic import atomic_write_bytes, check_target
from binarynet.graph import bnnfile, thresholds
from binarynet.graph.graph import Graph, undeployable_preprocessor
from binarynet.graph.ops import Conv2d, Dense, MaxPool2d, Scores, Threshold, op_label
from binarynet.graph.thresholds import Kind
from binarynet.graph.values import ValueInfo
from binarynet.graph.visitor import GraphVisitor

if TYPE_CHECKING:
    import onnx

__all__ = ["QONNX_DOMAIN", "threshold_signs", "to_qonnx", "write_qonnx"]

QONNX_DOMAIN = "qonnx.custom_op.general"
"""The domain of qonnx's custom ops (BipolarQuant, MultiThreshold)."""
ONNX_OPSET = 11
"""The standard ONNX opset of the graph (qonnx's preferred one)."""
INPUT_NAME = "image"
OUTPUT_NAME = "scores"


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ValueError(
            "QONNX export needs the onnx package: pip install 'binarynet[qonnx]'"
        ) from None
    return onnx


def threshold_signs(
    lo: np.ndarray, hi: np.ndarray, bound: int, where: str = "threshold"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (s, t), float32: +1 iff lo ≤ y ≤ hi ⇔ s·y ≥ t for every integer |y| ≤ bound
    (the table in the module docstring). Raises ValueError for an interval strictly inside the
    range (neither y ≥ t nor y ≤ t)."""
    lo64, hi64 = lo.astype(np.int64), hi.astype(np.int64)
    kinds = thresholds.classify(lo, hi, bound)
    inside = kinds == Kind.INSIDE
    if np.any(inside):
        c = int(np.flatnonzero(inside)[0])
        raise ValueError(
            f"{where}: channel {c} is +1 iff {lo64[c]} ≤ y ≤ {hi64[c]}, strictly inside the "
            f"reachable range ±{bound}; QONNX's MultiThreshold expresses only y ≥ t or y ≤ t"
        )
    never, always, up, down = (kinds == k for k in (Kind.NEVER, Kind.ALWAYS, Kind.UP, Kind.DOWN))
    sign = np.where(down, np.float32(-1), np.float32(1))
    t = np.select([never, always, up], [bound + 1, -bound, lo64], -hi64)
    return sign.astype(np.float32), t.astype(np.float32)


def _pm1(negative: np.ndarray) -> np.ndarray:
    """Booleans (True = −1) → float32 ±1."""
    return np.where(negative, np.float32(-1), np.float32(1)).astype(np.float32)


class _QONNXWriter(GraphVisitor[None]):
    """The QONNX back-end: each ``visit_<type>(op, x, y)`` appends the op's nodes, reading the
    current tensor ``self.cur`` (per-example value ``x``; NCHW when it has a spatial shape)."""

    def __init__(self, graph: Graph, tensors: Mapping[str, np.ndarray], batch_size: int) -> None:
        self.onnx = _onnx()
        self.graph, self.tensors, self.batch = graph, tensors, batch_size
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.cur = INPUT_NAME
        self.index = 0  # the op being visited, for names and messages

    # -- helpers --
    def _name(self, what: str) -> str:
        return f"op{self.index}_{what}"

    def _const(self, what: str, value: np.ndarray) -> str:
        name = self._name(what)
        array = np.ascontiguousarray(value, dtype=np.float32)
        self.inits.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def _node(self, op_type: str, inputs: list[str], what: str, **attrs: Any) -> str:
        out = self._name(what)
        domain = QONNX_DOMAIN if op_type in ("BipolarQuant", "MultiThreshold") else ""
        node = self.onnx.helper.make_node(op_type, inputs, [out], name=out, domain=domain, **attrs)
        self.nodes.append(node)
        self.cur = out
        return out

    def _bipolar_weight(self, signs: np.ndarray) -> str:
        """A ±1 weight initializer through BipolarQuant (scale 1)."""
        w = self._const("weight", signs)
        one = self._const("weight_scale", np.float32(1.0))
        node = self.onnx.helper.make_node(
            "BipolarQuant",
            [w, one],
            [self._name("weight_q")],
            name=self._name("weight_q"),
            domain=QONNX_DOMAIN,
        )
        self.nodes.append(node)
        return node.output[0]

    def begin(self, first: ValueInfo, flat: bool) -> tuple[int, ...]:
        """The graph input's shape; the nodes from the uint8 pixels p to x̃ = p − zp."""
        spec = self.graph.input
        if flat:
            shape: tuple[int, ...] = (self.batch, math.prod(first.shape))
        else:
            shape = (self.batch, *first.shape)
            self._node("Transpose", [self.cur], "nchw", perm=[0, 3, 1, 2])
        if spec.zero_point:
            zp = self._const("zero_point", np.float32(-spec.zero_point))
            self._node("Add", [self.cur, zp], "centred")
        return shape

    # -- ops --
    def visit_dense(self, op: Dense, x: ValueInfo, y: ValueInfo) -> None:
        signs = op.weight_signs(x, self.tensors)  # [O, *S], S in (H, W, C) order
        if x.kind == "bits" and len(x.shape) == 3:  # activations are NCHW here
            signs = signs.transpose(0, 3, 1, 2)
            self._node("Flatten", [self.cur], "flat", axis=1)
        w = self._bipolar_weight(_pm1(signs.reshape(op.out_features, -1).T))
        self._node("MatMul", [self.cur, w], "y")

    def visit_conv2d(self, op: Conv2d, x: ValueInfo, y: ValueInfo) -> None:
        signs = op.weight_signs(x, self.tensors).transpose(0, 3, 1, 2)  # [O, C, kh, kw]
        w = self._bipolar_weight(_pm1(signs))
        ph, pw = op.padding
        self._node(
            "Conv",
            [self.cur, w],
            "y",
            kernel_shape=list(op.kernel_size),
            strides=list(op.stride),
            pads=[ph, pw, ph, pw],
            dilations=[1, 1],
            group=1,
        )

    def visit_maxpool2d(self, op: MaxPool2d, x: ValueInfo, y: ValueInfo) -> None:
        self._node(
            "MaxPool",
            [self.cur],
            "pooled",
            kernel_shape=list(op.kernel_size),
            strides=list(op.stride),
        )

    def visit_threshold(self, op: Threshold, x: ValueInfo, y: ValueInfo) -> None:
        where = op_label(self.index, op)
        sign, t = threshold_signs(self.tensors[op.lo], self.tensors[op.hi], x.bound, where)
        channels = sign.shape[0]
        if np.any(sign < 0):
            broadcast = (1, channels) + (1,) * (len(x.shape) - 1)
            s = self._const("sign", sign.reshape(broadcast))
            self._node("Mul", [self.cur, s], "signed")
        thresholds = self._const("thresholds", t.reshape(channels, 1))
        self._node(
            "MultiThreshold",
            [self.cur, thresholds],
            "act",
            out_dtype="BIPOLAR",
            out_scale=2.0,
            out_bias=-1.0,
        )

    def visit_scores(self, op: Scores, x: ValueInfo, y: ValueInfo) -> None:
        v = self._node(
            "Mul", [self.cur, self._const("input_scale", np.float32(op.input_scale))], "v"
        )
        if op.bias is not None:
            self._node("Add", [v, self._const("bias", self.tensors[op.bias])], "biased")
        self._node("Mul", [self.cur, self._const("scale", self.tensors[op.scale])], "scaled")
        self._node("Add", [self.cur, self._const("shift", self.tensors[op.shift])], "shifted")

    # -- the model --
    def model(self, values: list[ValueInfo]) -> onnx.ModelProto:
        onnx, helper = self.onnx, self.onnx.helper
        flat = bool(getattr(self.graph.ops[0], "flattens", False))
        in_shape = self.begin(values[0], flat)
        for i, op in enumerate(self.graph.ops):
            self.index = i
            op.accept(self, values[i], values[i + 1])
        self.nodes[-1].output[0] = OUTPUT_NAME
        float32 = onnx.TensorProto.FLOAT
        graph = helper.make_graph(
            self.nodes,
            "binarynet",
            [helper.make_tensor_value_info(INPUT_NAME, float32, list(in_shape))],
            [
                helper.make_tensor_value_info(
                    OUTPUT_NAME, float32, [self.batch, self.graph.num_classes]
                )
            ],
            initializer=self.inits,
        )
        annotation = onnx.TensorAnnotation()
        annotation.tensor_name = INPUT_NAME
        entry = annotation.quant_parameter_tensor_names.add()
        entry.key, entry.value = "finn_datatype", "UINT8"
        graph.quantization_annotation.append(annotation)
        model = helper.make_model(
            graph,
            opset_imports=[
                helper.make_opsetid("", ONNX_OPSET),
                helper.make_opsetid(QONNX_DOMAIN, 1),
            ],
            producer_name="binarynet",
            producer_version=binarynet.__version__,
        )
        provenance = self.graph.provenance
        helper.set_model_props(
            model,
            {
                "binarynet.model": str(provenance.get("model")),
                "binarynet.input": (
                    f"uint8 {'flat' if flat else 'NHWC'} {list(in_shape[1:])}, "
                    f"zero_point {self.graph.input.zero_point}"
                ),
            },
        )
        return model


def to_qonnx(
    graph: Graph,
    tensors: Mapping[str, np.ndarray],
    *,
    batch_size: int = 1,
    preprocessed_input: bool = False,
) -> onnx.ModelProto:
    """The QONNX model (an ``onnx.ModelProto``) of a validated graph and its tensors.

    Args:
        graph, tensors: e.g. ``bnn.graph, bnn.tensors`` of :func:`binarynet.graph.bnnfile.load`.
        batch_size: the graph's fixed batch dimension (FINN builds for 1; qonnx's
            ``cleanup_model(override_inpsize=...)`` changes it later).
        preprocessed_input: export a network trained behind the ``gcn-zca`` preprocessor
            anyway; the graph then takes the uint8 images that preprocessor produced.

    Raises:
        ValueError: what QONNX cannot express (the message names it), a bad ``batch_size``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    refusal = undeployable_preprocessor(graph, "QONNX/FINN integer dataflow")
    if refusal is not None and not preprocessed_input:
        raise ValueError(f"{refusal}, or export the network alone (preprocessed_input=True)")
    values = graph.infer(bnnfile.tensor_table(tensors))
    graph.check_values(values, tensors)
    return _QONNXWriter(graph, tensors, batch_size).model(values)


def write_qonnx(
    model: str | os.PathLike[str] | bnnfile.BNNFile,
    out: str | os.PathLike[str],
    *,
    batch_size: int = 1,
    preprocessed_input: bool = False,
) -> onnx.ModelProto:
    """Write the QONNX model of ``model`` (a ``.bnn`` path or a loaded
    :class:`~binarynet.graph.bnnfile.BNNFile`; :func:`binarynet.deploy.export_qonnx` also takes
    a checkpoint) to ``out`` (atomically); returns it. See :func:`to_qonnx`."""
    check_target(out)  # a path through a file is refused before the work
    bnn = model if isinstance(model, bnnfile.BNNFile) else bnnfile.load(model)
    proto = to_qonnx(
        bnn.graph, bnn.tensors, batch_size=batch_size, preprocessed_input=preprocessed_input
    )
    data = proto.SerializeToString()
    atomic_write_bytes(out, lambda f: f.write(data))
    return proto
