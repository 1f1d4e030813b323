"""The ops of a deployable graph and what each op means, torch-free.

The op is the unit of binarynet's deployed side. Each op class here owns everything about its
op that does not depend on a back-end: its JSON form, its value checks, its shape inference
(:meth:`Op.infer`), the checks of its tensors' contents (:meth:`Op.check_values`), its reduction
size K (:meth:`LayerOp.reduction_size`), its deployed bytes (:meth:`Op.deployed_bytes`), its
cost per example for :mod:`binarynet.analysis.summary` (:meth:`Op.cost`), its place in a stage
(:attr:`Op.role`) and a double dispatch (:meth:`Op.accept`) to a back-end, a
:class:`~binarynet.graph.visitor.GraphVisitor` (the engine's planner, the C emitter, the QONNX
writer). The values between ops are :mod:`binarynet.graph.values`; the graph that chains them,
:mod:`binarynet.graph.graph`; the file around it, :mod:`binarynet.graph.bnnfile`. See
``docs/architecture.md``. Only NumPy is imported here.

Ops (tensor fields name tensors of the file):

``dense`` {out_features, weight}
    u8 or bits of any shape S → int32 [O]: y_o = Σ_i x̃_i·w_{o,i} over all K = ∏S elements in
    C order, with x̃ = p − zero_point for u8 input and x̃ = ±1 for bits, w = ±1. Weight (uint64):
    ``[O, ceil(K/64)]`` for u8 input; ``[O, *S[:-1], ceil(S[-1]/64)]`` for bits (each position's
    channel group packed and padded like the activations). R = K·max(zp, 255 − zp) for u8 input,
    K for bits.
``conv2d`` {out_channels, kernel_size [kh, kw], stride [sh, sw], padding [ph, pw], pad_value,
    weight}
    u8 or bits [H, W, C] → int32 [Ho, Wo, O], Ho = ⌊(H + 2ph − kh)/sh⌋ + 1: the correlation of
    torch's Conv2d over the input padded with ``pad_value`` (0 when the field is absent, as it
    is written for 0): with 0, padded taps contribute 0 (a pixel equal to zero_point for u8
    input, the third value 0 for bits); with +1 or −1 (bits input only) a padded tap is that ±1
    activation, so y = Σ over all kh·kw·C taps of ±1 products. Weight (uint64):
    ``[O, ceil(kh·kw·C/64)]`` packed along the (i, j, c) tap order for u8 input;
    ``[O, kh, kw, ceil(C/64)]`` for bits.
    R = kh·kw·C·max(zp, 255 − zp) for u8 input, kh·kw·C for bits.
``maxpool2d`` {kernel_size [kh, kw], stride [sh, sw]}
    int32 [H, W, C] → int32 [Ho, Wo, C], the window maximum, no padding, floor mode.
``threshold`` {lo, hi}
    int32 [..., C] → bits [..., C]: +1 iff lo_c ≤ y ≤ hi_c (lo, hi: int32 [C]). This is batch
    norm followed by sign(), folded by :mod:`binarynet.export`.
``scores`` {input_scale, bias, scale, shift}
    int32 [C] → float32 [C], the last op: in float32, one rounding per step,
    v = y·input_scale; v = v + bias (when ``bias`` is not null); v = v·scale; v = v + shift.
    This is exactly the torch model's last BinaryLinear (+ bias) → batch norm.


Roles
-----
Every op has a :class:`Role` that says where it sits in the grammar of a graph, which is
(layer pool* (activation | scores))+, scores last: ``layer`` (u8 or bits → int32, a reduction
over ±1 weights), ``pool`` (int32 → int32), ``activation`` (int32 → bits) and ``scores``
(int32 → float32). The grammar follows from the value kinds that :meth:`Graph.infer` checks; the
engine groups ops into stages by role, not by class.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from binarynet.graph.values import (
    MAX_DIM,
    MAX_EXACT,
    MAX_VALUE_BYTES,
    GraphError,
    InputSpec,
    Tensors,
    ValueInfo,
    check_keys,
    fail,
    json_int,
    json_name,
    json_optional_name,
    json_pair,
    json_power_of_two,
    unpack_bits,
    words,
)

if TYPE_CHECKING:
    from binarynet.graph.visitor import GraphVisitor

__all__ = [
    "OP_TYPES",
    "Conv2d",
    "Dense",
    "LayerOp",
    "MaxPool2d",
    "Op",
    "OpCost",
    "Role",
    "Scores",
    "Threshold",
    "op_label",
]


class Role(str, enum.Enum):
    """Where an op sits in a stage (see the module docstring's grammar)."""

    LAYER = "layer"  # u8 or bits → int32: a reduction over ±1 weights (dense, conv2d)
    POOL = "pool"  # int32 → int32, between a layer and its activation (maxpool2d)
    ACTIVATION = "activation"  # int32 → bits (threshold)
    SCORES = "scores"  # int32 → float32, the last op (scores)


@dataclass(frozen=True)
class OpCost:
    """What one op stores and computes per example, as deployed (a row of the summary).

    Attributes:
        params: parameters the op stores (weights count one per ±1 value).
        bits: {bit width: values stored}.
        float32_bytes: the same parameters in a float32 network (4 bytes each).
        deployed_bytes: the bytes of the op's tensors (exactly what the ``.bnn`` file stores).
        macs: multiply-accumulates by kind (``binary``, ``int8``; see
        :mod:`binarynet.analysis.summary`). ops: other per-value operations: ``threshold``,
        ``affine``, ``compare``. activation: (float32 bytes, deployed bytes) of the value the op
        writes to memory for
            the next stage, or None when its output stays inside a fused stage.
        note: how the op is deployed, in words.
    """

    params: int = 0
    bits: dict[int, int] = field(default_factory=dict)
    float32_bytes: int = 0
    deployed_bytes: int = 0
    macs: dict[str, int] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)
    activation: tuple[int, int] | None = None
    note: str = ""


R = TypeVar("R")


class Op:
    """Base of the graph's ops; each subclass documents its maths in the module docstring.

    Class attributes: ``type`` (the JSON name), ``role`` (:class:`Role`), ``fields`` (JSON fields
    besides ``type`` and ``source``), ``tensor_fields`` (the fields that name tensors).
    Instances have a ``source``: the torch module the op was exported from, or None.
    """

    type: ClassVar[str] = ""
    role: ClassVar[Role]
    fields: ClassVar[tuple[str, ...]] = ()
    tensor_fields: ClassVar[tuple[str, ...]] = ()
    source: str | None

    def tensors(self) -> dict[str, str]:
        """{field: tensor name} of the tensors this op uses."""
        names = {f: getattr(self, f) for f in self.tensor_fields}
        return {f: n for f, n in names.items() if n is not None}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in self.fields:
            value = getattr(self, f)
            out[f] = list(value) if isinstance(value, tuple) else value
        if getattr(self, "source", None) is not None:
            out["source"] = self.source
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Op:
        """The op of a JSON object (``where`` names it in errors)."""
        raise NotImplementedError

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        """The output value for input ``x``; checks this op's tensors' dtypes and shapes."""
        raise NotImplementedError

    def check_values(self, x: ValueInfo, tensors: Mapping[str, np.ndarray], where: str) -> None:
        """Checks on the contents of this op's tensors (after :meth:`infer` checked their
        shapes); ``x`` is the op's input value. None by default."""

    def deployed_bytes(self, tensors: Mapping[str, np.ndarray]) -> int:
        """Bytes of this op's tensors as deployed (as the ``.bnn`` file stores them)."""
        return int(sum(tensors[name].nbytes for name in self.tensors().values()))

    def cost(self, x: ValueInfo, y: ValueInfo, tensors: Mapping[str, np.ndarray]) -> OpCost:
        """What this op stores and computes per example, for input ``x`` and output ``y``."""
        raise NotImplementedError

    def accept(self, visitor: GraphVisitor[R], x: ValueInfo, y: ValueInfo) -> R:
        """Double dispatch: ``visitor.visit_<type>(self, x, y)`` for input ``x``, output ``y``."""
        method = getattr(visitor, f"visit_{self.type}", None)
        if method is None:
            return visitor.unsupported(self)
        result: R = method(self, x, y)
        return result


def _expect_tensor(
    tensors: Tensors,
    name: str,
    dtype: str,
    shape: tuple[int, ...],
    where: str,
) -> None:
    if name not in tensors:
        raise fail(where, f"tensor {name!r} is missing from the file")
    found_dtype, found_shape = tensors[name]
    if found_dtype != dtype:
        raise fail(where, f"tensor {name!r} has dtype {found_dtype}, expected {dtype}")
    if tuple(found_shape) != tuple(shape):
        raise fail(where, f"tensor {name!r} has shape {list(found_shape)}, expected {list(shape)}")


def _bound_check(bound: int, where: str) -> int:
    if bound > MAX_EXACT:
        raise fail(
            where,
            f"pre-activations reach ±{bound}, beyond ±{MAX_EXACT}: the torch model's float32 "
            "sums would not be exact",
        )
    return bound


def _input_multiplier(spec: InputSpec) -> int:
    return max(spec.zero_point, 255 - spec.zero_point)


class LayerOp(Op):
    """A binary layer (role ``layer``): int32 y_o = Σ x̃ᵢ·wₒᵢ over K inputs with ±1 weights
    stored as one packed ``weight`` tensor, for u8 or bits input.

    Subclasses give :meth:`reduction_size` (K), :meth:`weight_signs_shape` (the logical shape of
    the weight's signs) and :attr:`outputs` (O); the value checks, the sign unpacking and the cost
    are common.
    """

    role = Role.LAYER
    flattens: ClassVar[bool] = False
    """Whether the op reads its input as one flat vector (so the engine also takes a flat
    input for a graph that starts with it)."""
    weight: str

    @property
    def outputs(self) -> int:
        """O, the outputs (features or channels) per position."""
        raise NotImplementedError

    def reduction_size(self, x: ValueInfo) -> int:
        """K, the number of products summed into one output for input ``x``."""
        raise NotImplementedError

    def weight_signs_shape(self, x: ValueInfo) -> tuple[int, ...]:
        """The logical shape of the weight's signs, the last axis the one packed."""
        raise NotImplementedError

    def row_bits(self, x: ValueInfo) -> int:
        """Real bits of each packed row of the weight: K for u8 input (one row over every
        tap), the channels for bits input (one group per position or tap)."""
        return self.reduction_size(x) if x.kind == "u8" else x.shape[-1]

    def weight_signs(self, x: ValueInfo, tensors: Mapping[str, np.ndarray]) -> np.ndarray:
        """The weight's signs as booleans (True = −1) of :meth:`weight_signs_shape`: ``[O,
        *S]`` for dense over S, ``[O, kh, kw, C]`` for a convolution (taps (i, j, c))."""
        signs = unpack_bits(tensors[self.weight], self.row_bits(x))
        return signs.reshape(self.weight_signs_shape(x))

    def u8_offset(
        self, x: ValueInfo, tensors: Mapping[str, np.ndarray], zero_point: int
    ) -> np.ndarray:
        """int32 [O], for u8 input: the constant −zp·Σᵢwᵢ of y = Σᵢ(pᵢ − zp)·wᵢ = Σᵢpᵢwᵢ − zp·Σᵢwᵢ,
        with Σᵢwᵢ = K − 2·(number of −1 weights). Back-ends that sum Σᵢpᵢwᵢ on raw pixels add it."""
        negatives = self.weight_signs(x, tensors).reshape(self.outputs, -1).sum(axis=1)
        k = self.reduction_size(x)
        return (-zero_point * (k - 2 * negatives.astype(np.int64))).astype(np.int32)

    def check_values(self, x: ValueInfo, tensors: Mapping[str, np.ndarray], where: str) -> None:
        weight = tensors[self.weight]
        k = self.row_bits(x)
        if k % 64:
            last = weight.reshape(-1, weight.shape[-1])[:, -1]
            if np.any(last >> np.uint64(k % 64)):
                raise GraphError(
                    f"{where}: tensor {self.weight!r} has nonzero padding bits "
                    f"past the {k} real elements of each packed row"
                )

    def cost(self, x: ValueInfo, y: ValueInfo, tensors: Mapping[str, np.ndarray]) -> OpCost:
        k, o = self.reduction_size(x), self.outputs
        mac_kind = "int8" if x.kind == "u8" else "binary"
        return OpCost(
            params=o * k,
            bits={1: o * k},
            float32_bytes=4 * o * k,
            deployed_bytes=self.deployed_bytes(tensors),
            macs={mac_kind: math.prod(y.shape) * k},
            note="XNOR-popcount" if mac_kind == "binary" else "8-bit input × 1-bit weights",
        )


@dataclass(frozen=True)
class Dense(LayerOp):
    """``dense``: a binary fully connected layer (see the module docstring)."""

    out_features: int
    weight: str
    source: str | None = None
    type = "dense"
    fields = ("out_features", "weight")
    tensor_fields = ("weight",)
    flattens = True

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Dense:
        check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            json_int(obj, "out_features", where, 1, MAX_EXACT),
            json_name(obj, "weight", where),
            _source(obj, where),
        )

    @property
    def outputs(self) -> int:
        return self.out_features

    def reduction_size(self, x: ValueInfo) -> int:
        return math.prod(x.shape)

    def weight_signs_shape(self, x: ValueInfo) -> tuple[int, ...]:
        return (self.out_features, *x.shape)

    def weight_shape(self, x: ValueInfo) -> tuple[int, ...]:
        if x.kind == "u8":
            return (self.out_features, words(math.prod(x.shape)))
        return (self.out_features, *x.shape[:-1], words(x.shape[-1]))

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        where = ""
        if x.kind not in ("u8", "bits"):
            raise fail(where, f"takes uint8 or bits input, got {x.describe()}")
        _expect_tensor(tensors, self.weight, "U64", self.weight_shape(x), where)
        k = self.reduction_size(x)
        bound = k * (_input_multiplier(spec) if x.kind == "u8" else 1)
        return ValueInfo("int32", (self.out_features,), _bound_check(bound, where))


@dataclass(frozen=True)
class Conv2d(LayerOp):
    """``conv2d``: a binary 2-D convolution (see the module docstring)."""

    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    weight: str
    source: str | None = None
    pad_value: int = 0
    type = "conv2d"
    fields = ("out_channels", "kernel_size", "stride", "padding", "pad_value", "weight")
    tensor_fields = ("weight",)

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if not self.pad_value:
            del out["pad_value"]  # zero padding: the field is absent
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Conv2d:
        check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            json_int(obj, "out_channels", where, 1, MAX_EXACT),
            json_pair(obj, "kernel_size", where, 1, MAX_DIM),
            json_pair(obj, "stride", where, 1, MAX_DIM),
            json_pair(obj, "padding", where, 0, MAX_DIM),
            json_name(obj, "weight", where),
            _source(obj, where),
            json_int(obj, "pad_value", where, -1, 1) if "pad_value" in obj else 0,
        )

    @property
    def outputs(self) -> int:
        return self.out_channels

    def reduction_size(self, x: ValueInfo) -> int:
        return self.kernel_size[0] * self.kernel_size[1] * x.shape[-1]

    def weight_signs_shape(self, x: ValueInfo) -> tuple[int, ...]:
        return (self.out_channels, *self.kernel_size, x.shape[-1])

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def weight_shape(self, x: ValueInfo) -> tuple[int, ...]:
        kh, kw = self.kernel_size
        c = x.shape[-1]
        if x.kind == "u8":
            return (self.out_channels, words(kh * kw * c))
        return (self.out_channels, kh, kw, words(c))

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        where = ""
        if x.kind not in ("u8", "bits") or len(x.shape) != 3:
            raise fail(where, f"takes uint8 or bits [H, W, C] input, got {x.describe()}")
        if self.pad_value and x.kind != "bits":
            raise fail(where, f"pad_value {self.pad_value} needs bits input, got {x.describe()}")
        h, w, _ = x.shape
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if h + 2 * ph < kh or w + 2 * pw < kw:
            raise fail(
                where,
                f"kernel {list(self.kernel_size)} does not fit the padded input "
                f"{h + 2 * ph}×{w + 2 * pw}",
            )
        ho, wo = self.output_hw(h, w)
        _expect_tensor(tensors, self.weight, "U64", self.weight_shape(x), where)
        taps = self.reduction_size(x)
        if x.kind == "u8" and ho * wo * taps > MAX_VALUE_BYTES:
            # The engine runs a uint8 convolution on its im2col patches: bound them like values,
            # so that a small file cannot make one image need terabytes.
            raise fail(
                where,
                f"its uint8 input patches (im2col, {ho}×{wo} pixels × {taps} taps) need "
                f"{ho * wo * taps} bytes per example, more than the limit of {MAX_VALUE_BYTES}",
            )
        bound = taps * (_input_multiplier(spec) if x.kind == "u8" else 1)
        return ValueInfo("int32", (ho, wo, self.out_channels), _bound_check(bound, where))


@dataclass(frozen=True)
class MaxPool2d(Op):
    """``maxpool2d``: window maximum of integer pre-activations (no padding, floor mode)."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    source: str | None = None
    type = "maxpool2d"
    role = Role.POOL
    fields = ("kernel_size", "stride")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> MaxPool2d:
        check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            json_pair(obj, "kernel_size", where, 1, MAX_DIM),
            json_pair(obj, "stride", where, 1, MAX_DIM),
            _source(obj, where),
        )

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (h - kh) // sh + 1, (w - kw) // sw + 1

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        where = ""
        if x.kind != "int32" or len(x.shape) != 3:
            raise fail(where, f"takes int32 [H, W, C] input, got {x.describe()}")
        h, w, c = x.shape
        kh, kw = self.kernel_size
        if kh > h or kw > w:
            raise fail(where, f"window {list(self.kernel_size)} is larger than the input {h}×{w}")
        return ValueInfo("int32", (*self.output_hw(h, w), c), x.bound)

    def cost(self, x: ValueInfo, y: ValueInfo, tensors: Mapping[str, np.ndarray]) -> OpCost:
        window = self.kernel_size[0] * self.kernel_size[1]
        return OpCost(ops={"compare": math.prod(y.shape) * (window - 1)})


@dataclass(frozen=True)
class Threshold(Op):
    """``threshold``: +1 iff lo ≤ y ≤ hi per channel (batch norm + sign, folded)."""

    lo: str
    hi: str
    source: str | None = None
    type = "threshold"
    role = Role.ACTIVATION
    fields = ("lo", "hi")
    tensor_fields = ("lo", "hi")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Threshold:
        check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            json_name(obj, "lo", where),
            json_name(obj, "hi", where),
            _source(obj, where),
        )

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        where = ""
        if x.kind != "int32":
            raise fail(where, f"takes int32 input, got {x.describe()}")
        c = x.shape[-1]
        _expect_tensor(tensors, self.lo, "I32", (c,), where)
        _expect_tensor(tensors, self.hi, "I32", (c,), where)
        return ValueInfo("bits", x.shape)

    def cost(self, x: ValueInfo, y: ValueInfo, tensors: Mapping[str, np.ndarray]) -> OpCost:
        c, n_out = y.shape[-1], math.prod(y.shape)
        return OpCost(
            params=2 * c,
            bits={32: 2 * c},
            float32_bytes=8 * c,
            deployed_bytes=self.deployed_bytes(tensors),
            ops={"threshold": n_out},
            activation=(4 * n_out, y.nbytes),
            note="batch norm + sign → int32 thresholds lo, hi; packed bits",
        )


@dataclass(frozen=True)
class Scores(Op):
    """``scores``: the float32 class scores of the last layer (see the module docstring)."""

    input_scale: float
    bias: str | None
    scale: str
    shift: str
    source: str | None = None
    type = "scores"
    role = Role.SCORES
    fields = ("input_scale", "bias", "scale", "shift")
    tensor_fields = ("bias", "scale", "shift")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Scores:
        check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            json_power_of_two(obj.get("input_scale"), where, "input_scale"),
            json_optional_name(obj, "bias", where),
            json_name(obj, "scale", where),
            json_name(obj, "shift", where),
            _source(obj, where),
        )

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        where = ""
        if x.kind != "int32" or len(x.shape) != 1:
            raise fail(where, f"takes int32 [C] input, got {x.describe()}")
        (c,) = x.shape
        for name in self.tensors().values():
            _expect_tensor(tensors, name, "F32", (c,), where)
        return ValueInfo("float32", (c,))

    def check_values(self, x: ValueInfo, tensors: Mapping[str, np.ndarray], where: str) -> None:
        for name in self.tensors().values():
            if not np.all(np.isfinite(tensors[name])):
                raise GraphError(f"{where}: tensor {name!r} is not finite")

    def cost(self, x: ValueInfo, y: ValueInfo, tensors: Mapping[str, np.ndarray]) -> OpCost:
        n = int(sum(tensors[name].size for name in self.tensors().values()))
        n_out = math.prod(y.shape)
        return OpCost(
            params=n,
            bits={32: n},
            float32_bytes=4 * n,
            deployed_bytes=self.deployed_bytes(tensors),
            ops={"affine": n_out},
            activation=(4 * n_out, 4 * n_out),
            note="batch norm → float32 scale, shift" + (" (+ bias)" if self.bias else ""),
        )


def _source(obj: Mapping[str, Any], where: str) -> str | None:
    value = obj.get("source")
    if value is not None and not isinstance(value, str):
        raise fail(where, f"'source' must be a string, got {value!r}")
    return value


def op_label(i: int, op: Op) -> str:
    """``op 3 (conv2d, torch module '4')``: how messages name an op."""
    source = getattr(op, "source", None)
    return f"op {i} ({op.type}" + (f", torch module {source!r})" if source else ")")


OP_TYPES: dict[str, type[Op]] = {
    cls.type: cls for cls in (Dense, Conv2d, MaxPool2d, Threshold, Scores)
}
"""Every op class by its JSON ``type``: the one registration a new op needs here."""
