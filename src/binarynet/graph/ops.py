"""The graph of a ``.bnn`` model: its values, its ops and what each op means, torch-free.

The op is the unit of binarynet's deployed side. Each op class here owns everything about its
op that does not depend on a back-end: its JSON form, its value checks, its shape inference
(:meth:`Op.infer`), the checks of its tensors' contents (:meth:`Op.check_values`), its reduction
size K (:meth:`LayerOp.reduction_size`), its deployed bytes (:meth:`Op.deployed_bytes`), its
cost per example for :mod:`binarynet.analysis.summary` (:meth:`Op.cost`), its place in a stage
(:attr:`Op.role`) and a double dispatch (:meth:`Op.accept`) to a :class:`GraphVisitor`.
A back-end (the engine's planner, the summary, later a C emitter or a QONNX writer) is a
visitor with one ``visit_<type>`` method per op type; an op that a back-end lacks fails loudly
(:class:`NotImplementedError` naming the op and the back-end). See ``docs/architecture.md``.

:mod:`binarynet.graph.bnnfile` is the file format around this graph (safetensors, checksum, loading
and validation); it re-exports every name of this module. Only NumPy is imported here.

Values and ops
--------------
The input is a batch of uint8 images ``[N, *input.shape]`` (channels last), standing for the
fixed-point values x = (p − zero_point)·scale. Every op maps one per-example value to the next;
values are of four kinds:

- ``u8``: the input pixels p;
- ``bits``: ±1 values of logical shape S, packed along the last axis into uint64 words
  (bit 1 = −1, element k in bit k % 64 of word k / 64, padding bits zero), stored as
  ``S[:-1] + [ceil(S[-1] / 64)]`` words;
- ``int32``: exact integer pre-activations y, |y| ≤ R (R, the reachable bound, is known
  statically from the layer's reduction size);
- ``float32``: the class scores.

Ops (tensor fields name tensors of the file):

``dense`` {out_features, weight}
    u8 or bits of any shape S → int32 [O]: y_o = Σ_i x̃_i·w_{o,i} over all K = ∏S elements in
    C order, with x̃ = p − zero_point for u8 input and x̃ = ±1 for bits, w = ±1. Weight (uint64):
    ``[O, ceil(K/64)]`` for u8 input; ``[O, *S[:-1], ceil(S[-1]/64)]`` for bits (each position's
    channel group packed and padded like the activations). R = K·max(zp, 255 − zp) for u8 input,
    K for bits.
``conv2d`` {out_channels, kernel_size [kh, kw], stride [sh, sw], padding [ph, pw], weight}
    u8 or bits [H, W, C] → int32 [Ho, Wo, O], Ho = ⌊(H + 2ph − kh)/sh⌋ + 1: the correlation of
    torch's Conv2d, with padded taps contributing 0 (a pixel equal to zero_point for u8 input,
    the third value 0 for bits). Weight (uint64): ``[O, ceil(kh·kw·C/64)]`` packed along the
    (i, j, c) tap order for u8 input; ``[O, kh, kw, ceil(C/64)]`` for bits.
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
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

__all__ = [
    "FORMAT",
    "VERSION",
    "BNNFileError",
    "Conv2d",
    "Dense",
    "Graph",
    "GraphVisitor",
    "InputSpec",
    "LayerOp",
    "MaxPool2d",
    "Op",
    "OpCost",
    "Role",
    "Scores",
    "StageSpan",
    "Threshold",
    "ValueInfo",
    "affine_eval",
    "op_label",
    "pack_bits",
    "unpack_bits",
]

FORMAT = "binarynet-bnn"
VERSION = 1
PREPROCESS_PREFIX = "preprocess."

INT32_MIN = int(np.iinfo(np.int32).min)
INT32_MAX = int(np.iinfo(np.int32).max)

MAX_EXACT = (1 << 24) - 1
"""Largest |y| of an integer pre-activation: torch's float32 sums are exact below 2²⁴."""
MAX_VALUE_BYTES = 1 << 28
"""Largest per-example intermediate value (bytes) the engine agrees to allocate."""
MAX_DIM = 1 << 16
"""Largest input or kernel dimension accepted."""
MAX_OPS = 4096

_LAYOUTS = {1: "NF", 2: "NHW", 3: "NHWC"}

Tensors = Mapping[str, tuple[str, tuple[int, ...]]]
"""{tensor name: (safetensors dtype, shape)}: what shape inference checks tensors against."""


class BNNFileError(ValueError):
    """A ``.bnn`` file (or a graph about to be written) is malformed or unsupported."""


# --------------------------------------------------------------------------------------------
# Bit packing (NumPy): the bit convention of binarynet, for writing weights and for checks.
# --------------------------------------------------------------------------------------------


def _check_little_endian() -> None:
    if sys.byteorder != "little":  # pragma: no cover - every supported platform
        raise RuntimeError("binarynet's packed format assumes a little-endian machine")


def pack_bits(negative: np.ndarray) -> np.ndarray:
    """Pack booleans ``[..., K]`` (True = −1) into uint64 ``[..., ceil(K/64)]``.

    Element k goes to bit k % 64 of word k / 64; the padding bits of the last word are zero.
    This is the convention of the compiled kernels (``csrc/bitpack.h``).
    """
    _check_little_endian()
    negative = np.asarray(negative, dtype=bool)
    k = negative.shape[-1]
    words = -(-k // 64)
    pad = words * 64 - k
    if pad:
        negative = np.concatenate(
            [negative, np.zeros((*negative.shape[:-1], pad), dtype=bool)], axis=-1
        )
    packed = np.packbits(negative, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.uint64)


def unpack_bits(packed: np.ndarray, k: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: uint64 ``[..., W]`` → booleans ``[..., k]`` (True = −1)."""
    _check_little_endian()
    as_bytes = np.ascontiguousarray(packed, dtype=np.uint64).view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, count=k, bitorder="little").astype(bool)


def affine_eval(
    y: np.ndarray,
    input_scale: float,
    bias: np.ndarray | None,
    scale: np.ndarray,
    shift: np.ndarray,
) -> np.ndarray:
    """The ``scores`` op (and batch norm before sign): f(y) = fl(fl(fl(fl(y·input_scale) + b)
    ·scale) + shift) in float32, one rounding per operation in torch's order, per channel (the
    last axis). ``y``: integers with |y| < 2²⁴, so that float32(y) is exact."""
    v = np.asarray(y).astype(np.float32) * np.float32(input_scale)
    if bias is not None:
        v = v + bias.astype(np.float32, copy=False)
    v = v * scale.astype(np.float32, copy=False)
    return v + shift.astype(np.float32, copy=False)


def _words(k: int) -> int:
    return -(-k // 64)


# --------------------------------------------------------------------------------------------
# Graph
# --------------------------------------------------------------------------------------------


def _fail(where: str, message: str) -> BNNFileError:
    return BNNFileError(f"{where}: {message}" if where else message)


def _int(obj: Mapping[str, Any], key: str, where: str, lo: int, hi: int) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"{key!r} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise _fail(where, f"{key!r} = {value} is out of range; expected {lo}..{hi}")
    return value


def _pair(obj: Mapping[str, Any], key: str, where: str, lo: int, hi: int) -> tuple[int, int]:
    value = obj.get(key)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
    ):
        raise _fail(where, f"{key!r} must be a list of two integers, got {value!r}")
    for v in value:
        if not lo <= v <= hi:
            raise _fail(where, f"{key!r} = {value} is out of range; expected values in {lo}..{hi}")
    return value[0], value[1]


def _name(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{key!r} must name a tensor (a non-empty string), got {value!r}")
    return value


def _optional_name(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    return None if obj.get(key) is None else _name(obj, key, where)


def _power_of_two(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"{key!r} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise _fail(where, f"{key!r} must be a positive power of two, got {value!r}")
    mantissa, exponent = math.frexp(value)
    if mantissa != 0.5 or not -60 <= exponent <= 60:
        raise _fail(where, f"{key!r} must be a power of two in 2^-60..2^60, got {value!r}")
    return value


def _check_keys(obj: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise _fail(where, f"unknown fields {unknown}; expected only {sorted(allowed)}")


@dataclass(frozen=True)
class InputSpec:
    """The model's input: uint8 ``[N, *shape]``, channels last, x = (p − zero_point)·scale.

    ``layout`` is ``"NHWC"`` for images with channels (torch takes them NCHW), ``"NHW"`` for
    grey images without a channel axis and ``"NF"`` for flat feature vectors.
    """

    shape: tuple[int, ...]
    zero_point: int = 128
    scale: float = 2.0**-7

    @property
    def layout(self) -> str:
        return _LAYOUTS[len(self.shape)]

    def to_json(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "shape": list(self.shape),
            "dtype": "uint8",
            "zero_point": self.zero_point,
            "scale": self.scale,
        }

    @classmethod
    def from_json(cls, obj: Any) -> InputSpec:
        where = "input"
        if not isinstance(obj, dict):
            raise _fail(where, f"must be an object, got {type(obj).__name__}")
        _check_keys(obj, ("layout", "shape", "dtype", "zero_point", "scale"), where)
        shape = obj.get("shape")
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= 3
            or any(isinstance(d, bool) or not isinstance(d, int) for d in shape)
        ):
            raise _fail(where, f"'shape' must be a list of 1 to 3 integers, got {shape!r}")
        if any(not 1 <= d <= MAX_DIM for d in shape):
            raise _fail(where, f"'shape' {shape} has a dimension outside 1..{MAX_DIM}")
        if math.prod(shape) > MAX_VALUE_BYTES:
            raise _fail(where, f"'shape' {shape} is too large ({math.prod(shape)} bytes)")
        layout = obj.get("layout")
        if layout != _LAYOUTS[len(shape)]:
            raise _fail(
                where,
                f"'layout' {layout!r} disagrees with shape {shape}; "
                f"expected {_LAYOUTS[len(shape)]!r}",
            )
        if obj.get("dtype") != "uint8":
            raise _fail(where, f"'dtype' must be 'uint8', got {obj.get('dtype')!r}")
        zero_point = _int(obj, "zero_point", where, 0, 255)
        scale = _power_of_two(obj.get("scale"), where, "scale")
        return cls(tuple(shape), zero_point, scale)


@dataclass(frozen=True)
class ValueInfo:
    """A per-example value between two ops: its kind, logical shape and integer bound.

    ``kind`` is ``"u8"``, ``"bits"``, ``"int32"`` or ``"float32"``; ``bound`` is the reachable
    bound R (|y| ≤ R) of an ``int32`` value, else 0.
    """

    kind: str
    shape: tuple[int, ...]
    bound: int = 0

    @property
    def nbytes(self) -> int:
        """Bytes of one example of this value as the engine stores it."""
        if self.kind == "bits":
            return 8 * math.prod(self.shape[:-1]) * _words(self.shape[-1])
        itemsize = {"u8": 1, "int32": 4, "float32": 4}[self.kind]
        return itemsize * math.prod(self.shape)

    def describe(self) -> str:
        dims = "×".join(map(str, self.shape))
        return f"{self.kind}[{dims}]"


# --------------------------------------------------------------------------------------------
# Ops: the base class, roles, costs and visitors
# --------------------------------------------------------------------------------------------


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
        macs: multiply-accumulates by kind (``binary``, ``int8``; see :mod:`binarynet.analysis.summary`).
        ops: other per-value operations: ``threshold``, ``affine``, ``compare``.
        activation: (float32 bytes, deployed bytes) of the value the op writes to memory for
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


class GraphVisitor(Generic[R]):
    """A back-end: one ``visit_<type>(op, *args)`` method per op type, called by
    :meth:`Op.accept`. A method this base class provides raises :class:`NotImplementedError`
    naming the op and the back-end, so that a back-end that lacks an op fails loudly instead of
    computing something else; subclasses override the ops they support."""

    def unsupported(self, op: Op) -> R:
        raise NotImplementedError(
            f"the {op.type!r} op ({type(op).__name__}) is not supported by "
            f"{type(self).__name__}: add its visit_{op.type} method"
        )

    def visit_dense(self, op: Dense, *args: Any) -> R:
        return self.unsupported(op)

    def visit_conv2d(self, op: Conv2d, *args: Any) -> R:
        return self.unsupported(op)

    def visit_maxpool2d(self, op: MaxPool2d, *args: Any) -> R:
        return self.unsupported(op)

    def visit_threshold(self, op: Threshold, *args: Any) -> R:
        return self.unsupported(op)

    def visit_scores(self, op: Scores, *args: Any) -> R:
        return self.unsupported(op)


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

    def accept(self, visitor: GraphVisitor[R], *args: Any) -> R:
        """Double dispatch: ``visitor.visit_<type>(self, *args)``."""
        method = getattr(visitor, f"visit_{self.type}", None)
        if method is None:
            return visitor.unsupported(self)
        return method(self, *args)


def _expect_tensor(
    tensors: Tensors,
    name: str,
    dtype: str,
    shape: tuple[int, ...],
    where: str,
) -> None:
    if name not in tensors:
        raise _fail(where, f"tensor {name!r} is missing from the file")
    found_dtype, found_shape = tensors[name]
    if found_dtype != dtype:
        raise _fail(where, f"tensor {name!r} has dtype {found_dtype}, expected {dtype}")
    if tuple(found_shape) != tuple(shape):
        raise _fail(where, f"tensor {name!r} has shape {list(found_shape)}, expected {list(shape)}")


def _bound_check(bound: int, where: str) -> int:
    if bound > MAX_EXACT:
        raise _fail(
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
                raise BNNFileError(
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
        _check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            _int(obj, "out_features", where, 1, MAX_EXACT),
            _name(obj, "weight", where),
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
            return (self.out_features, _words(math.prod(x.shape)))
        return (self.out_features, *x.shape[:-1], _words(x.shape[-1]))

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        where = ""
        if x.kind not in ("u8", "bits"):
            raise _fail(where, f"takes uint8 or bits input, got {x.describe()}")
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
    type = "conv2d"
    fields = ("out_channels", "kernel_size", "stride", "padding", "weight")
    tensor_fields = ("weight",)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Conv2d:
        _check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            _int(obj, "out_channels", where, 1, MAX_EXACT),
            _pair(obj, "kernel_size", where, 1, MAX_DIM),
            _pair(obj, "stride", where, 1, MAX_DIM),
            _pair(obj, "padding", where, 0, MAX_DIM),
            _name(obj, "weight", where),
            _source(obj, where),
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
            return (self.out_channels, _words(kh * kw * c))
        return (self.out_channels, kh, kw, _words(c))

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        where = ""
        if x.kind not in ("u8", "bits") or len(x.shape) != 3:
            raise _fail(where, f"takes uint8 or bits [H, W, C] input, got {x.describe()}")
        h, w, _ = x.shape
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if h + 2 * ph < kh or w + 2 * pw < kw:
            raise _fail(
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
            raise _fail(
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
        _check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            _pair(obj, "kernel_size", where, 1, MAX_DIM),
            _pair(obj, "stride", where, 1, MAX_DIM),
            _source(obj, where),
        )

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (h - kh) // sh + 1, (w - kw) // sw + 1

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        where = ""
        if x.kind != "int32" or len(x.shape) != 3:
            raise _fail(where, f"takes int32 [H, W, C] input, got {x.describe()}")
        h, w, c = x.shape
        kh, kw = self.kernel_size
        if kh > h or kw > w:
            raise _fail(where, f"window {list(self.kernel_size)} is larger than the input {h}×{w}")
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
        _check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            _name(obj, "lo", where),
            _name(obj, "hi", where),
            _source(obj, where),
        )

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        where = ""
        if x.kind != "int32":
            raise _fail(where, f"takes int32 input, got {x.describe()}")
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
        _check_keys(obj, ("type", "source", *cls.fields), where)
        return cls(
            _power_of_two(obj.get("input_scale"), where, "input_scale"),
            _optional_name(obj, "bias", where),
            _name(obj, "scale", where),
            _name(obj, "shift", where),
            _source(obj, where),
        )

    def infer(self, x: ValueInfo, spec: InputSpec, tensors: Tensors) -> ValueInfo:
        where = ""
        if x.kind != "int32" or len(x.shape) != 1:
            raise _fail(where, f"takes int32 [C] input, got {x.describe()}")
        (c,) = x.shape
        for name in self.tensors().values():
            _expect_tensor(tensors, name, "F32", (c,), where)
        return ValueInfo("float32", (c,))

    def check_values(self, x: ValueInfo, tensors: Mapping[str, np.ndarray], where: str) -> None:
        for name in self.tensors().values():
            if not np.all(np.isfinite(tensors[name])):
                raise BNNFileError(f"{where}: tensor {name!r} is not finite")

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
        raise _fail(where, f"'source' must be a string, got {value!r}")
    return value


def op_label(i: int, op: Op) -> str:
    """``op 3 (conv2d, torch module '4')``: how messages name an op."""
    source = getattr(op, "source", None)
    return f"op {i} ({op.type}" + (f", torch module {source!r})" if source else ")")


OP_TYPES: dict[str, type[Op]] = {
    cls.type: cls for cls in (Dense, Conv2d, MaxPool2d, Threshold, Scores)
}
"""Every op class by its JSON ``type``: the one registration a new op needs here."""


@dataclass(frozen=True)
class StageSpan:
    """The ops of one stage, by index: a layer op, the pool ops after it, and its tail (an
    activation or the scores). The grammar of the roles makes every valid graph a sequence of
    such spans; back-ends that group ops into stages walk :meth:`Graph.stages`."""

    layer: int
    pools: tuple[int, ...]
    tail: int


@dataclass(frozen=True)
class Graph:
    """A model's graph: input spec, ops in order, class count and provenance."""

    input: InputSpec
    ops: tuple[Op, ...]
    num_classes: int
    provenance: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "input": self.input.to_json(),
            "preprocess": self.preprocess,
            "num_classes": self.num_classes,
            "ops": [op.to_json() for op in self.ops],
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Graph:
        if not isinstance(obj, dict):
            raise BNNFileError(f"the graph must be a JSON object, got {type(obj).__name__}")
        if obj.get("format") != FORMAT:
            raise BNNFileError(
                f"not a binarynet model: format {obj.get('format')!r}, expected {FORMAT!r}"
            )
        version = obj.get("version")
        if version != VERSION:
            raise BNNFileError(
                f"unsupported .bnn version {version!r}: this binarynet reads version {VERSION}"
            )
        _check_keys(
            obj,
            ("format", "version", "input", "preprocess", "num_classes", "ops", "provenance"),
            "graph",
        )
        spec = InputSpec.from_json(obj.get("input"))
        num_classes = _int(obj, "num_classes", "graph", 1, MAX_EXACT)
        ops_json = obj.get("ops")
        if not isinstance(ops_json, list) or not 1 <= len(ops_json) <= MAX_OPS:
            raise BNNFileError(f"graph: 'ops' must be a list of 1..{MAX_OPS} ops")
        ops: list[Op] = []
        for i, op in enumerate(ops_json):
            where = f"op {i}"
            if not isinstance(op, dict):
                raise _fail(where, f"must be an object, got {type(op).__name__}")
            kind = op.get("type")
            if not isinstance(kind, str) or kind not in OP_TYPES:
                raise _fail(where, f"unknown op type {kind!r}; expected one of {sorted(OP_TYPES)}")
            ops.append(OP_TYPES[kind].from_json(op, where))
        provenance = obj.get("provenance", {})
        if not isinstance(provenance, dict):
            raise BNNFileError(f"graph: 'provenance' must be an object, got {provenance!r}")
        preprocess = obj.get("preprocess")
        if preprocess is not None and not isinstance(preprocess, dict):
            raise BNNFileError(f"graph: 'preprocess' must be an object or null, got {preprocess!r}")
        return cls(spec, tuple(ops), num_classes, provenance, preprocess)

    def infer(self, tensors: Tensors) -> list[ValueInfo]:
        """Check that shapes chain from the input to the scores; the value before each op and
        after the last one (``len(ops) + 1`` entries). ``tensors`` maps names to
        (safetensors dtype, shape); every tensor must be used by exactly one op field."""
        value = ValueInfo("u8", self.input.shape)
        values = [value]
        used: dict[str, str] = {}
        for i, op in enumerate(self.ops):
            where = op_label(i, op)
            try:
                value = op.infer(value, self.input, tensors)
            except BNNFileError as exc:
                raise _fail(where, str(exc)) from None
            if value.nbytes > MAX_VALUE_BYTES:
                raise _fail(
                    where,
                    f"its output {value.describe()} needs {value.nbytes} bytes per example, "
                    f"more than the limit of {MAX_VALUE_BYTES}",
                )
            for name in op.tensors().values():
                if name in used:
                    raise _fail(where, f"tensor {name!r} is already used by another op")
                used[name] = op.type
            if value.kind == "float32" and i != len(self.ops) - 1:
                raise _fail(where, "'scores' must be the last op")
            values.append(value)
        if value.kind != "float32":
            raise BNNFileError(
                f"the graph ends with {value.describe()}; expected float32 scores from a "
                "'scores' op"
            )
        if value.shape != (self.num_classes,):
            raise BNNFileError(
                f"the graph produces {value.shape[0]} scores but num_classes is {self.num_classes}"
            )
        unused = sorted(
            name
            for name in set(tensors) - set(used)
            if self.preprocess is None or not name.startswith(PREPROCESS_PREFIX)
        )
        if unused:
            raise BNNFileError(f"tensors not used by any op: {unused}")
        return values

    def stages(self) -> list[StageSpan]:
        """The graph as stages, ``(layer pool* (activation | scores))+`` (see :class:`Role`);
        :class:`BNNFileError` where an op breaks the grammar (not after :meth:`infer`)."""
        spans = []
        i, n = 0, len(self.ops)
        while i < n:
            if self.ops[i].role is not Role.LAYER:
                raise BNNFileError(f"{op_label(i, self.ops[i])} does not follow a layer")
            j = i + 1
            while j < n and self.ops[j].role is Role.POOL:
                j += 1
            if j == n or self.ops[j].role not in (Role.ACTIVATION, Role.SCORES):
                raise BNNFileError(
                    f"{op_label(i, self.ops[i])}: its stage ends without an activation or scores"
                )
            spans.append(StageSpan(i, tuple(range(i + 1, j)), j))
            i = j + 1
        return spans

    def check_values(self, values: list[ValueInfo], tensors: Mapping[str, np.ndarray]) -> None:
        """Each op's checks on its tensors' contents (zero padding bits in packed weights,
        finite floats), after :meth:`infer` gave ``values``."""
        for i, op in enumerate(self.ops):
            op.check_values(values[i], tensors, op_label(i, op))
