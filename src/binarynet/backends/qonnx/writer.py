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
  no border correction is needed in this graph. A convolution padded with ±1 (``pad_value``)
  is FINN's XNOR form or a ``Pad`` (:meth:`_QONNXWriter._padded_conv` says which, and why
  both are exact). A dense layer after a convolution reads the
  NCHW activations through ``Flatten``, its weight columns permuted from the file's (H, W, C)
  order to (C, H, W).
- **threshold** (batch norm + sign, +1 iff ``lo ≤ y ≤ hi`` per channel c) as one
  ``MultiThreshold`` on y with one threshold t_c, ``out_scale = 2``, ``out_bias = −1``
  (``out_dtype = BIPOLAR``): a_c = 2·[y ≥ t_c] − 1 ∈ {−1, +1}. Over the reachable range
  |y| ≤ R each channel's interval is one of (:mod:`binarynet.graph.thresholds` classifies
  them, :mod:`binarynet.export` derives them):

  ===============================  ========  =====  ==========================
  interval on [−R, R]              t_c       f_c    a_c = f_c·(the op's bit)
  ===============================  ========  =====  ==========================
  empty, or outside [−R, R]        R + 1     +1     −1
  covers [−R, R]                   −R        +1     +1
  up-set, hi ≥ R (γ > 0)           lo        +1     +1 iff y ≥ lo
  down-set, lo ≤ −R (γ < 0)        hi + 1    −1     +1 iff y ≥ hi + 1 ⇔ not y ≤ hi
  ===============================  ========  =====  ==========================

  So a = f ⊙ o, o the op's ±1 output: a down-set channel comes out negated. The next layer
  takes o, so its weights for input channel c are multiplied by f_c (y' = Σ w·o = Σ (f·w)·a);
  a padded convolution's zeros stay zeros. An interval strictly inside [−R, R] (neither set;
  only a hand-made file has one) is refused: one threshold cannot express it.
- **max-pool** comes after the threshold, on the ±1 values a (``MaxPool``, ``pads`` 0, floor
  mode), where FINN's dataflow pools binary streams. This is the op's pool of the integers
  exactly: every a_c = 2·[y ≥ t_c] − 1 is non-decreasing in y, so the threshold of the window
  maximum is the maximum of the thresholds; for a down-set channel, whose o is the minimum of
  the window's bits, the negated a = −o is again a maximum: −o = [max y ≥ hi + 1].
- **scores**: ``Mul(input_scale)``, ``Add(bias)`` (when there is one), ``Mul(scale)``,
  ``Add(shift)``: the four float32 operations of :func:`binarynet.graph.values.affine_eval` in the
  same order, each rounded once, so the output ``scores`` [B, classes] is bit-identical to the
  engine's.

For FINN (``target="finn"``; FINN compiles the same graph): FINN's 1-bit streams hold bits 0
and 1 for −1 and +1 and have no 0, so its hardware pads a ±1 activation with −1: a binary
convolution padded with 0 is refused for that target (FINN would compute a different network).
The first, uint8 convolution may be padded (its x̃ padding is the integer 0). The graph
declares what FINN's compiler needs: the input's NHWC layout (``tensor_layout``) beside its
``UINT8`` type, the zero point typed ``INT9`` (so x̃ = p − zp is an integer stream), and ONNX
IR version :data:`IR_VERSION`, which the ``onnx`` checker that FINN ships accepts; every
exported model is checked with ``onnx.checker``.

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

__all__ = ["QONNX_DOMAIN", "TARGETS", "threshold_steps", "to_qonnx", "write_qonnx"]

QONNX_DOMAIN = "qonnx.custom_op.general"
"""The domain of qonnx's custom ops (BipolarQuant, MultiThreshold)."""
ONNX_OPSET = 11
"""The standard ONNX opset of the graph (qonnx's preferred one)."""
IR_VERSION = 8
"""The ONNX IR version the file declares: opset 11 needs 6 or more; onnx 1.21 (FINN's) checks up
to 11."""
TARGETS = ("qonnx", "finn")
"""What ``target`` may name: any QONNX reader, or FINN's compiler (which refuses more)."""
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


def threshold_steps(
    lo: np.ndarray, hi: np.ndarray, bound: int, where: str = "threshold"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (f, t), float32: 2·[y ≥ t] − 1 = f·(+1 iff lo ≤ y ≤ hi, else −1) for every
    integer |y| ≤ bound (the table in the module docstring). Raises ValueError for an interval
    strictly inside the range (neither y ≥ t nor y ≤ t)."""
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
    flip = np.where(down, np.float32(-1), np.float32(1))
    t = np.select([never, always, up], [bound + 1, -bound, lo64], hi64 + 1)
    return flip.astype(np.float32), t.astype(np.float32)


def _pm1(negative: np.ndarray) -> np.ndarray:
    """Booleans (True = −1) → float32 ±1."""
    return np.where(negative, np.float32(-1), np.float32(1)).astype(np.float32)


class _QONNXWriter(GraphVisitor[None]):
    """The QONNX back-end: each ``visit_<type>(op, x, y)`` appends the op's nodes, reading the
    current tensor ``self.cur`` (per-example value ``x``; NCHW when it has a spatial shape).

    A pool is held in ``self.pools`` until the threshold after it is written; ``self.flip`` is
    the f of the last threshold (None for the input), which the next layer folds into its
    weights (module docstring)."""

    def __init__(
        self, graph: Graph, tensors: Mapping[str, np.ndarray], batch_size: int, target: str
    ) -> None:
        self.onnx = _onnx()
        self.graph, self.tensors, self.batch, self.target = graph, tensors, batch_size, target
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.datatypes: dict[str, str] = {}  # tensor → FINN datatype annotation
        self.cur = INPUT_NAME
        self.index = 0  # the op being visited, for names and messages
        self.pools: list[tuple[int, MaxPool2d]] = []
        self.flip: np.ndarray | None = None
        self.activation: Any = None  # the last MultiThreshold node

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
        custom = ("BipolarQuant", "MultiThreshold", "Im2Col", "XnorPopcountMatMul")
        domain = QONNX_DOMAIN if op_type in custom else ""
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
            self.datatypes[zp] = "INT9"  # x̃ = p − zp ∈ [−255, 255]: an integer stream for FINN
            self._node("Add", [self.cur, zp], "centred")
        return shape

    def _weights(self, op: Dense | Conv2d, x: ValueInfo) -> np.ndarray:
        """The layer's ±1 weights [O, *S] (S in (H, W, C) order), input channels multiplied by
        the previous threshold's f."""
        w = _pm1(op.weight_signs(x, self.tensors))
        if self.flip is not None:
            w = w * self.flip  # the last axis is the input channel
        return w

    # -- ops --
    def visit_dense(self, op: Dense, x: ValueInfo, y: ValueInfo) -> None:
        w = self._weights(op, x)
        if x.kind == "bits" and len(x.shape) == 3:  # activations are NCHW here
            w = w.transpose(0, 3, 1, 2)
            self._node("Flatten", [self.cur], "flat", axis=1)
        weight = self._bipolar_weight(np.ascontiguousarray(w.reshape(op.out_features, -1).T))
        self._node("MatMul", [self.cur, weight], "y")

    def visit_conv2d(self, op: Conv2d, x: ValueInfo, y: ValueInfo) -> None:
        if op.pad_value:
            self._padded_conv(op, x)
            return
        ph, pw = op.padding
        if self.target == "finn" and x.kind == "bits" and (ph or pw):
            raise ValueError(
                f"{op_label(self.index, op)}: a binary convolution zero-padded by [{ph}, {pw}] "
                "is not exact on FINN, whose 1-bit streams pad with -1 (bit 0), not 0; train it "
                "unpadded (padding=0)"
            )
        w = self._bipolar_weight(np.ascontiguousarray(self._weights(op, x).transpose(0, 3, 1, 2)))
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

    def _padded_conv(self, op: Conv2d, x: ValueInfo) -> None:
        """A convolution over its input padded with ``op.pad_value`` = p ∈ {+1, −1}.

        The input is a = f ⊙ o (o the op's ±1 input), so the padded a is f_c·p per channel.
        When that is −1 everywhere, the previous threshold emits bits u = (a + 1)/2 ∈ {0, 1}
        instead (``BINARY``: u = [y ≥ t]; its pools commute with the affine map), whose zero
        padding is a = −1, and the layer is FINN's XNOR form on NHWC patches: ``Im2Col``
        (padding 0), ``XnorPopcountMatMul`` with the bits of the weights w·f, counting the
        agreements A, and y = 2A − K over all K = kh·kw·C taps (batch 1: qonnx's ``Im2Col``
        infers no other). Otherwise (not for FINN) the a are multiplied back by f, padded with
        p (``Pad``) and convolved unpadded."""
        (kh, kw), (sh, sw), (ph, pw) = op.kernel_size, op.stride, op.padding
        h, w, c = x.shape
        flip = self.flip if self.flip is not None else np.ones(c, np.float32)
        padded = flip * op.pad_value
        label = op_label(self.index, op)
        if self.target == "finn" and self.batch != 1:
            raise ValueError(
                f"{label}: FINN's form of a ±1-padded convolution (qonnx's Im2Col) has batch 1, "
                f"got batch_size={self.batch}"
            )
        if np.all(padded == -1) and self.batch == 1:
            mt = self.activation
            for attr in mt.attribute:
                if attr.name == "out_dtype":
                    attr.s = b"BINARY"
                elif attr.name == "out_scale":
                    attr.f = 1.0
                elif attr.name == "out_bias":
                    attr.f = 0.0
            weights = self._weights(op, x).reshape(op.out_channels, -1).T  # [(i, j, c), O]
            bits = self._const("weight_bits", (weights > 0).astype(np.float32))
            self.datatypes[bits] = "BINARY"
            nhwc = self._node("Transpose", [self.cur], "nhwc", perm=[0, 2, 3, 1])
            self.datatypes[nhwc] = "BINARY"  # Im2Col reads its input's type
            self._node(
                "Im2Col",
                [self.cur],
                "patches",
                stride=[sh, sw],
                kernel_size=[kh, kw],
                input_shape=f"({self.batch},{h},{w},{c})",
                pad_amount=[ph, pw, ph, pw],
                pad_value=0,
            )
            self._node("XnorPopcountMatMul", [self.cur, bits], "agree")
            self._node("Mul", [self.cur, self._const("two", np.float32(2))], "twice")
            k = np.float32(-kh * kw * c)
            self._node("Add", [self.cur, self._const("minus_k", k)], "dot")
            self._node("Transpose", [self.cur], "y", perm=[0, 3, 1, 2])
            return
        if self.target == "finn":
            ch = int(np.flatnonzero(padded != -1)[0])
            why = (
                "train it with pad_value=-1"
                if op.pad_value > 0
                else f"channel {ch} is a down-set threshold (γ < 0) behind a max-pool, which "
                "comes out negated"
            )
            raise ValueError(
                f"{label}: FINN pads its 1-bit streams with -1 only, and this padding reaches "
                f"channel {ch} of them as +1: {why}"
            )
        if self.flip is not None:
            self._node("Mul", [self.cur, self._const("flip", flip.reshape(1, c, 1, 1))], "o")
        self.flip = None
        pads = np.array([0, 0, ph, pw, 0, 0, ph, pw], dtype=np.int64)
        pads_name = self._name("pads")
        self.inits.append(self.onnx.numpy_helper.from_array(pads, pads_name))
        value = self._const("pad_value", np.float32(op.pad_value))
        self._node("Pad", [self.cur, pads_name, value], "padded", mode="constant")
        w4 = self._bipolar_weight(np.ascontiguousarray(self._weights(op, x).transpose(0, 3, 1, 2)))
        self._node(
            "Conv",
            [self.cur, w4],
            "y",
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            pads=[0, 0, 0, 0],
            dilations=[1, 1],
            group=1,
        )

    def visit_maxpool2d(self, op: MaxPool2d, x: ValueInfo, y: ValueInfo) -> None:
        self.pools.append((self.index, op))  # written behind the threshold that follows

    def visit_threshold(self, op: Threshold, x: ValueInfo, y: ValueInfo) -> None:
        where = op_label(self.index, op)
        flip, t = threshold_steps(self.tensors[op.lo], self.tensors[op.hi], x.bound, where)
        thresholds = self._const("thresholds", t.reshape(flip.shape[0], 1))
        self._node(
            "MultiThreshold",
            [self.cur, thresholds],
            "act",
            out_dtype="BIPOLAR",
            out_scale=2.0,
            out_bias=-1.0,
        )
        self.activation = self.nodes[-1]
        index = self.index
        for pool_index, pool in self.pools:
            self.index = pool_index  # names the pool's nodes
            self._node(
                "MaxPool",
                [self.cur],
                "pooled",
                kernel_shape=list(pool.kernel_size),
                strides=list(pool.stride),
                pads=[0, 0, 0, 0],
                ceil_mode=0,
            )
        self.index, self.pools = index, []
        self.flip = flip if np.any(flip < 0) else None

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
        layout = "['N', 'C']" if flat else "['N', 'H', 'W', 'C']"
        annotations = {INPUT_NAME: {"finn_datatype": "UINT8", "tensor_layout": layout}}
        for name, datatype in self.datatypes.items():
            annotations[name] = {"finn_datatype": datatype}
        for name, entries in annotations.items():
            annotation = onnx.TensorAnnotation()
            annotation.tensor_name = name
            for key, value in entries.items():
                entry = annotation.quant_parameter_tensor_names.add()
                entry.key, entry.value = key, value
            graph.quantization_annotation.append(annotation)
        model = helper.make_model(
            graph,
            opset_imports=[
                helper.make_opsetid("", ONNX_OPSET),
                helper.make_opsetid(QONNX_DOMAIN, 1),
            ],
            producer_name="binarynet",
            producer_version=binarynet.__version__,
            ir_version=IR_VERSION,
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
    target: str = "qonnx",
) -> onnx.ModelProto:
    """The QONNX model (an ``onnx.ModelProto``) of a validated graph and its tensors, checked
    by ``onnx.checker``.

    Args:
        graph, tensors: e.g. ``bnn.graph, bnn.tensors`` of :func:`binarynet.graph.bnnfile.load`.
        batch_size: the graph's fixed batch dimension (FINN builds for 1; qonnx's
            ``cleanup_model(override_inpsize=...)`` changes it later).
        preprocessed_input: export a network trained behind the ``gcn-zca`` preprocessor
            anyway; the graph then takes the uint8 images that preprocessor produced.
        target: ``"qonnx"`` (any QONNX reader) or ``"finn"``: the same graph, refused where
            FINN's compiler would compute something else (a zero-padded binary convolution).

    Raises:
        ValueError: what QONNX cannot express (the message names it), a bad ``batch_size``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    refusal = undeployable_preprocessor(graph, "QONNX/FINN integer dataflow")
    if refusal is not None and not preprocessed_input:
        raise ValueError(f"{refusal}, or export the network alone (preprocessed_input=True)")
    values = graph.infer(bnnfile.tensor_table(tensors))
    graph.check_values(values, tensors)
    proto = _QONNXWriter(graph, tensors, batch_size, target).model(values)
    _onnx().checker.check_model(proto)
    return proto


def write_qonnx(
    model: str | os.PathLike[str] | bnnfile.BNNFile,
    out: str | os.PathLike[str],
    *,
    batch_size: int = 1,
    preprocessed_input: bool = False,
    target: str = "qonnx",
) -> onnx.ModelProto:
    """Write the QONNX model of ``model`` (a ``.bnn`` path or a loaded
    :class:`~binarynet.graph.bnnfile.BNNFile`; :func:`binarynet.deploy.export_qonnx` also takes
    a checkpoint) to ``out`` (atomically); returns it. See :func:`to_qonnx`."""
    check_target(out)  # a path through a file is refused before the work
    bnn = model if isinstance(model, bnnfile.BNNFile) else bnnfile.load(model)
    proto = to_qonnx(
        bnn.graph,
        bnn.tensors,
        batch_size=batch_size,
        preprocessed_input=preprocessed_input,
        target=target,
    )
    data = proto.SerializeToString()
    atomic_write_bytes(out, lambda f: f.write(data))
    return proto
