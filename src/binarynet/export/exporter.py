"""Export: a trained torch model → a ``.bnn`` file that :mod:`binarynet.backends.engine` runs
bit-exactly.

This is the only module that knows both worlds (torch and the file format of
:mod:`binarynet.graph.bnnfile`). It walks an ``nn.Sequential`` of :mod:`binarynet.training.nn`
layers in evaluation mode and writes, per layer, packed sign bits and integer thresholds.

The maths
---------
**Integer pre-activations.** A binary layer's torch output is an exact integer y (a sum of ±1
products; float32 sums of integers are exact below 2²⁴). The first layer takes
x = (p − zp)·2⁻⁷ from :class:`~binarynet.training.nn.FixedPointInput`; its torch output is 2⁻⁷·s
with the integer s = Σ (pᵢ − zp)·wᵢ = Σ pᵢwᵢ − zp·Σwᵢ (every partial sum is a multiple of 2⁻⁷ below
2¹⁷, exact in float32). Zero padding of x is a pixel equal to zp, which contributes 0 to s. The file
stores layers in terms of y (or s); the engine computes Σ pᵢwᵢ on the bit planes of p and folds
−zp·Σwᵢ. With ``input_scale`` = 2⁻⁷ for the first layer and 1 otherwise, the torch value is
y·input_scale, exactly.

**Batch norm + sign = an integer interval.** After the layer come an optional bias b (a
separate float32 add) and batch norm, whose evaluation forward is exactly
``v * scale + shift`` in float32 (``eval_affine()``). So the torch value reaching sign() is::

    f(y) = fl(fl(fl(fl(y·input_scale) + b)·scale) + shift)       (one float32 rounding per op)

and the unit is +1 iff f(y) ≥ 0 (sign(0) = +1, also for −0.0). Each rounded operation is
monotone (non-decreasing; multiplying by scale < 0 makes it non-increasing, by scale = 0
constant), so f is monotone on the integers and P(y) = [f(y) ≥ 0] is monotone too. Over the
reachable range [−R, R] (R = K for ±1 inputs, R = K·max(zp, 255 − zp) for the first layer)
P is therefore one of: always true, always false, false-then-true (an up-set, y ≥ τ) or
true-then-false (a down-set, y ≤ τ). We evaluate P at ±R to tell which, then find τ by a
binary search over the integers, evaluating f with NumPy float32 in the same order as torch.
The result is the interval [lo, hi] with +1 iff lo ≤ y ≤ hi:

    up-set   [τ, INT32_MAX]     (the usual case γ > 0)
    down-set [INT32_MIN, τ]     (γ < 0)
    always +1: [INT32_MIN, INT32_MAX];  always −1: [INT32_MAX, INT32_MIN] (lo > hi)  (γ = 0, or
    a threshold outside the reachable range)

No assumption about the parity of y (y ≡ K mod 2 for ±1 inputs) or about ties is needed: the
search evaluates the exact torch expression at integers, so f(y) == 0 gives +1 like torch.

**Max-pooling before batch norm.** torch pools the values y·input_scale; multiplying by a
power of two is exact and increasing, so that is the pool of the integers y. The engine may
pool the integers and then threshold, or threshold first and pool the bits (bit 1 = −1): for an
up-set, max(y) ≥ τ ⇔ some yⱼ ≥ τ ⇔ not every bit is 1, so the pooled bit is the AND of the bits;
for a down-set, max(y) ≤ τ ⇔ every yⱼ ≤ τ ⇔ every bit is 0, so it is the OR; constant channels
give equal bits, so either. Both are exact.

**Flatten.** torch flattens (C, H, W); the engine keeps activations channels last (H, W, C), so
the first fully connected layer after a convolution gets its weight columns permuted to
(H, W, C) order and packed per position with the activations' channel padding.

**Scores.** The last layer (binary layer → batch norm, no sign) is written as a ``scores`` op:
the engine computes f(y) above in float32 with NumPy, bit-identical to torch's scores, so the
argmax (first index on ties, in both) is identical.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import binarynet
from binarynet.config import DEFAULT_INPUT_SHAPES
from binarynet.graph import bnnfile, thresholds
from binarynet.graph.graph import PREPROCESS_PREFIX, Graph
from binarynet.graph.ops import Conv2d, Dense, MaxPool2d, Op, Scores, Threshold
from binarynet.graph.values import (
    INT32_MAX,
    INT32_MIN,
    MAX_EXACT,
    InputSpec,
    affine_eval,
    pack_bits,
)
from binarynet.training.checkpoint import LoadedCheckpoint, read_checkpoint
from binarynet.training.nn import (
    BinaryActivation,
    BinaryConv2d,
    BinaryLinear,
    ExactBatchNorm1d,
    ExactBatchNorm2d,
    FixedPointInput,
    ShiftBatchNorm1d,
    ShiftBatchNorm2d,
)

__all__ = [
    "ExportError",
    "affine_eval",
    "build_graph",
    "checkpoint_graph",
    "export",
    "export_checkpoint",
    "threshold_interval",
]


class ExportError(ValueError):
    """The model cannot be exported (an unsupported module or arrangement)."""


# --------------------------------------------------------------------------------------------
# Batch norm + sign → thresholds
# --------------------------------------------------------------------------------------------


def threshold_interval(
    bound: int,
    input_scale: float,
    bias: np.ndarray | None,
    scale: np.ndarray,
    shift: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel int32 (lo, hi) with f(y) ≥ 0 ⇔ lo ≤ y ≤ hi for every integer |y| ≤ bound.

    See the module docstring: P(y) = [f(y) ≥ 0] is monotone, so its value at ±bound tells
    whether it is constant, an up-set or a down-set, and a vectorised binary search over the
    integers finds the boundary.
    """
    if not 0 <= bound <= MAX_EXACT:
        raise ExportError(f"reachable bound {bound} is outside 0..{MAX_EXACT}")
    channels = scale.shape[0]

    def positive(y: np.ndarray) -> np.ndarray:
        return affine_eval(y, input_scale, bias, scale, shift) >= 0

    low = np.full(channels, -bound, dtype=np.int64)
    high = np.full(channels, bound, dtype=np.int64)
    kinds = thresholds.classify_ends(positive(low), positive(high))
    up, down = kinds == thresholds.Kind.UP, kinds == thresholds.Kind.DOWN
    # Q(y) = P(y) for an up-set, ¬P(y) for a down-set: false at `a`, true at `b`; shrink to the
    # first y where Q is true. Other channels start with b − a = 1 and do not move.
    a = np.where(up | down, low, 0)
    b = np.where(up | down, high, 1)
    while np.any(b - a > 1):
        mid = (a + b) // 2
        q = positive(mid) ^ down
        b = np.where(q, mid, b)
        a = np.where(q, a, mid)
    lo = np.full(channels, INT32_MIN, dtype=np.int64)
    hi = np.full(channels, INT32_MAX, dtype=np.int64)
    lo[up] = b[up]  # the smallest y with f(y) ≥ 0
    hi[down] = a[down]  # the largest y with f(y) ≥ 0
    never = kinds == thresholds.Kind.NEVER
    lo[never], hi[never] = INT32_MAX, INT32_MIN
    return lo.astype(np.int32), hi.astype(np.int32)


# --------------------------------------------------------------------------------------------
# The walk over the model
# --------------------------------------------------------------------------------------------

_BATCH_NORMS = (ExactBatchNorm1d, ShiftBatchNorm1d)  # the 2-d classes subclass these
_BATCH_NORMS_2D = (ExactBatchNorm2d, ShiftBatchNorm2d)


@dataclass
class _State:
    """Where the walk is: the kind of the current value and its per-example torch shape."""

    kind: str  # "start", "u8", "bits", "int", "bn"
    torch_shape: tuple[int, ...]
    flat: bool = False  # an nn.Flatten came since the last spatial op
    # For "int"/"bn": what turns the integer into the torch value.
    bound: int = 0
    input_scale: float = 1.0
    bias: np.ndarray | None = None
    scale: np.ndarray | None = None
    shift: np.ndarray | None = None


def _engine_shape(torch_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-example torch shape → the engine's: (C, H, W) → (H, W, C); others unchanged."""
    if len(torch_shape) == 3:
        c, h, w = torch_shape
        return (h, w, c)
    return torch_shape


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, f"{full}.")
        else:
            yield full, child


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _sign_bits(weight: torch.Tensor, where: str) -> np.ndarray:
    """sign(W) as booleans, True = −1 (sign(0) = sign(−0.0) = +1, as binarize() does)."""
    w = weight.detach().to(torch.float32).cpu()
    if not bool(torch.isfinite(w).all()):
        raise ExportError(f"{where}: the latent weights are not all finite")
    return (w < 0).numpy()


def _finite(array: np.ndarray, what: str, where: str) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise ExportError(f"{where}: {what} is not finite: {array[~np.isfinite(array)][:4]}")
    return np.ascontiguousarray(array, dtype=np.float32)


_Handler = Callable[["_Exporter", str, Any], None]
_HANDLERS: dict[type, _Handler] = {}
"""torch module class → the :class:`_Exporter` method that exports it (see :func:`_handles`)."""


def _handles(*classes: type) -> Callable[[_Handler], _Handler]:
    """Register the decorated :class:`_Exporter` method as the handler of ``classes`` (and of
    their subclasses, unless one of those has its own handler: the most specific class of a
    module's MRO wins)."""

    def register(handler: _Handler) -> _Handler:
        for cls in classes:
            _HANDLERS[cls] = handler
        return handler

    return register


def _handler(module: nn.Module) -> _Handler | None:
    for cls in type(module).__mro__:
        if cls in _HANDLERS:
            return _HANDLERS[cls]
    return None


class _Exporter:
    """The walk: :meth:`add` sends each leaf module to its registered handler, which checks it
    against the current value (:class:`_State`), appends ops and tensors and moves the state on."""

    def __init__(self, spec: InputSpec, torch_shape: tuple[int, ...]) -> None:
        self.spec = spec
        self.ops: list[Op] = []
        self.tensors: dict[str, np.ndarray] = {}
        self.state = _State("start", torch_shape)

    def _name(self, field: str) -> str:
        return f"op{len(self.ops)}.{field}"

    def _expect(self, where: str, module: nn.Module, *kinds: str) -> None:
        if self.state.kind not in kinds:
            described = {
                "start": "the raw uint8 input (FixedPointInput must come first)",
                "u8": "the fixed-point input",
                "bits": "binary (±1) activations",
                "int": "a binary layer's output, which batch norm must follow",
                "bn": "batch-normalized values, which a BinaryActivation must binarize",
            }[self.state.kind]
            raise ExportError(f"module {where} ({type(module).__name__}) cannot follow {described}")

    def add(self, where: str, module: nn.Module) -> None:
        handler = _handler(module)
        if handler is None:
            raise ExportError(
                f"module {where} ({type(module).__name__}) is not supported; a .bnn model is "
                "FixedPointInput, Flatten, Dropout, BinaryLinear, BinaryConv2d, MaxPool2d, "
                "binarynet.training.nn batch norms and BinaryActivation"
            )
        handler(self, where, module)

    @_handles(nn.Dropout, nn.Identity)
    def _identity(self, where: str, module: nn.Module) -> None:
        """Identity in evaluation mode: nothing to export."""

    @_handles(FixedPointInput)
    def _fixed_point_input(self, where: str, module: FixedPointInput) -> None:
        self._expect(where, module, "start")
        if (module.zero_point, module.scale) != (self.spec.zero_point, self.spec.scale):
            raise ExportError(f"module {where}: inconsistent input spec")  # pragma: no cover
        self.state.kind = "u8"

    @_handles(nn.Flatten)
    def _flatten(self, where: str, module: nn.Flatten) -> None:
        self._expect(where, module, "u8", "bits")
        if module.start_dim != 1 or module.end_dim != -1:
            raise ExportError(
                f"module {where} (Flatten): only start_dim=1, end_dim=-1 is supported, got "
                f"{module.start_dim}, {module.end_dim}"
            )
        self.state.flat = True

    @_handles(BinaryActivation)
    def _activation(self, where: str, module: BinaryActivation) -> None:
        st = self.state
        self._expect(where, module, "bn")
        assert st.scale is not None and st.shift is not None  # set by the batch norm
        lo, hi = threshold_interval(st.bound, st.input_scale, st.bias, st.scale, st.shift)
        op = Threshold(self._name("lo"), self._name("hi"), where)
        self.tensors[op.lo], self.tensors[op.hi] = lo, hi
        self.ops.append(op)
        st.kind, st.bias, st.scale, st.shift = "bits", None, None, None

    @_handles(nn.modules.batchnorm._BatchNorm)
    def _torch_batchnorm(self, where: str, module: nn.Module) -> None:
        raise ExportError(
            f"module {where} ({type(module).__name__}): use binarynet.training.nn."
            "ExactBatchNorm1d/2d or ShiftBatchNorm1d/2d, whose evaluation forward "
            "(x·scale + shift in float32) export can fold exactly"
        )

    def _input_kind(self, where: str, layer: BinaryLinear | BinaryConv2d) -> str:
        kind = self.state.kind
        if kind == "u8" and layer.binarize_input:
            raise ExportError(
                f"module {where} ({type(layer).__name__}) has binarize_input=True on the "
                "fixed-point input; the first layer must take it as is (binarize_input=False)"
            )
        return kind

    @_handles(BinaryLinear)
    def _dense(self, where: str, layer: BinaryLinear) -> None:
        self._expect(where, layer, "u8", "bits")
        st = self.state
        kind = self._input_kind(where, layer)
        if len(st.torch_shape) != 1 and not st.flat:
            raise ExportError(
                f"module {where} (BinaryLinear) gets a {list(st.torch_shape)} input; add an "
                "nn.Flatten before it"
            )
        k = math.prod(st.torch_shape)
        if layer.in_features != k:
            raise ExportError(
                f"module {where} (BinaryLinear) has in_features={layer.in_features}, but its "
                f"input has {k} features (shape {list(st.torch_shape)})"
            )
        out = layer.out_features
        neg = _sign_bits(layer.weight, f"module {where}").reshape(out, *st.torch_shape)
        if len(st.torch_shape) == 3:  # columns (C, H, W) → the engine's (H, W, C)
            neg = neg.transpose(0, 2, 3, 1)
        if kind == "u8":
            packed = pack_bits(neg.reshape(out, k))
        else:
            packed = pack_bits(np.ascontiguousarray(neg))
        op = Dense(out, self._name("weight"), where)
        self.tensors[op.weight] = packed
        self.ops.append(op)
        self._after_layer(where, layer, kind, k, (out,))

    @_handles(BinaryConv2d)
    def _conv(self, where: str, layer: BinaryConv2d) -> None:
        self._expect(where, layer, "u8", "bits")
        st = self.state
        kind = self._input_kind(where, layer)
        if len(st.torch_shape) != 3 or st.flat:
            raise ExportError(
                f"module {where} (BinaryConv2d) needs a [C, H, W] input, got "
                f"{'a flattened ' if st.flat else ''}{list(st.torch_shape)}"
            )
        c, h, w = st.torch_shape
        if layer.in_channels != c:
            raise ExportError(
                f"module {where} (BinaryConv2d) has in_channels={layer.in_channels}, but its "
                f"input has {c} channels"
            )
        if layer.groups != 1 or _pair(layer.dilation) != (1, 1):
            raise ExportError(
                f"module {where} (BinaryConv2d): groups={layer.groups}, "
                f"dilation={layer.dilation} are not supported (expected 1 and (1, 1))"
            )
        if layer.padding_mode != "zeros":
            raise ExportError(
                f"module {where} (BinaryConv2d): padding_mode={layer.padding_mode!r} is not "
                "supported (expected 'zeros')"
            )
        kh, kw = _pair(layer.kernel_size)
        padding = layer.padding
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if kh % 2 == 0 or kw % 2 == 0:
                raise ExportError(f"module {where}: padding='same' with an even kernel")
            padding = ((kh - 1) // 2, (kw - 1) // 2)
        ph, pw = _pair(padding)
        sh, sw = _pair(layer.stride)
        out = layer.out_channels
        pad_value = getattr(layer, "pad_value", 0)  # the input's padded value: 0 or ±1
        if pad_value and kind != "bits":
            raise ExportError(
                f"module {where} (BinaryConv2d): pad_value={pad_value} pads ±1 inputs, but its "
                "input is the 8-bit image (expected pad_value=0)"
            )
        op = Conv2d(out, (kh, kw), (sh, sw), (ph, pw), self._name("weight"), where, pad_value)
        ho, wo = op.output_hw(h, w)
        if ho < 1 or wo < 1:
            raise ExportError(f"module {where} (BinaryConv2d): the output would be empty")
        neg = _sign_bits(layer.weight, f"module {where}").transpose(0, 2, 3, 1)  # O, kh, kw, C
        if kind == "u8":
            packed = pack_bits(neg.reshape(out, kh * kw * c))
        else:
            packed = pack_bits(np.ascontiguousarray(neg))
        self.tensors[op.weight] = packed
        self.ops.append(op)
        self._after_layer(where, layer, kind, kh * kw * c, (out, ho, wo))

    def _after_layer(
        self,
        where: str,
        layer: BinaryLinear | BinaryConv2d,
        kind: str,
        k: int,
        torch_shape: tuple[int, ...],
    ) -> None:
        zp = self.spec.zero_point
        bound = k * (max(zp, 255 - zp) if kind == "u8" else 1)
        if bound > MAX_EXACT:
            raise ExportError(
                f"module {where}: pre-activations reach ±{bound}, beyond the ±2²⁴ where torch's "
                "float32 sums are exact"
            )
        bias = None
        if layer.bias is not None:
            bias = _finite(layer.bias.detach().float().cpu().numpy(), "the bias", where)
        self.state = _State(
            "int",
            torch_shape,
            bound=bound,
            input_scale=self.spec.scale if kind == "u8" else 1.0,
            bias=bias,
        )

    @_handles(nn.MaxPool2d)
    def _maxpool(self, where: str, pool: nn.MaxPool2d) -> None:
        self._expect(where, pool, "int")
        st = self.state
        if len(st.torch_shape) != 3:
            raise ExportError(f"module {where} (MaxPool2d) needs a [C, H, W] input")
        if (
            _pair(pool.padding) != (0, 0)
            or _pair(pool.dilation) != (1, 1)
            or pool.ceil_mode
            or pool.return_indices
        ):
            raise ExportError(
                f"module {where} (MaxPool2d): only padding=0, dilation=1, ceil_mode=False is "
                f"supported, got {pool}"
            )
        kernel = _pair(pool.kernel_size)
        stride = _pair(pool.stride if pool.stride not in (None, ()) else pool.kernel_size)
        op = MaxPool2d(kernel, stride, where)
        c, h, w = st.torch_shape
        if kernel[0] > h or kernel[1] > w:
            raise ExportError(f"module {where} (MaxPool2d): window {kernel} exceeds {h}×{w}")
        self.ops.append(op)
        st.torch_shape = (c, *op.output_hw(h, w))

    @_handles(*_BATCH_NORMS)
    def _batchnorm(self, where: str, bn: ExactBatchNorm1d | ShiftBatchNorm1d) -> None:
        self._expect(where, bn, "int")
        st = self.state
        spatial = len(st.torch_shape) == 3
        if spatial != isinstance(bn, _BATCH_NORMS_2D):
            raise ExportError(
                f"module {where} ({type(bn).__name__}) does not fit a {list(st.torch_shape)} input"
            )
        if bn.num_features != st.torch_shape[0]:
            raise ExportError(
                f"module {where} ({type(bn).__name__}) has {bn.num_features} channels, its "
                f"input {st.torch_shape[0]}"
            )
        if not bn.track_running_stats or bn.running_var is None:
            raise ExportError(
                f"module {where} ({type(bn).__name__}) has no running statistics, so its "
                "evaluation output depends on the batch"
            )
        scale, shift = bn.eval_affine()
        st.scale = _finite(scale.detach().cpu().numpy(), "the batch-norm scale", where)
        st.shift = _finite(shift.detach().cpu().numpy(), "the batch-norm shift", where)
        st.kind = "bn"

    def finish(self) -> None:
        st = self.state
        if st.kind != "bn" or len(st.torch_shape) != 1:
            raise ExportError(
                "the model must end with BinaryLinear → batch norm producing the class scores; "
                f"it ends with {st.kind!r} values of shape {list(st.torch_shape)}"
            )
        op = Scores(
            st.input_scale,
            self._name("bias") if st.bias is not None else None,
            self._name("scale"),
            self._name("shift"),
        )
        assert st.scale is not None and st.shift is not None  # set by the batch norm ("bn")
        if op.bias is not None and st.bias is not None:
            self.tensors[op.bias] = st.bias
        self.tensors[op.scale] = st.scale
        self.tensors[op.shift] = st.shift
        self.ops.append(op)


def _default_input_shape(model: nn.Sequential, provenance: dict[str, Any]) -> tuple[int, ...]:
    name = provenance.get("model")
    if name in DEFAULT_INPUT_SHAPES:
        return DEFAULT_INPUT_SHAPES[name]
    for module in model.modules():
        if isinstance(module, BinaryConv2d):
            raise ExportError(
                "pass input_shape=(C, H, W): a convolutional model's input size is not "
                "determined by its layers"
            )
        if isinstance(module, BinaryLinear):
            return (28, 28) if module.in_features == 784 else (module.in_features,)
    raise ExportError("the model has no binary layer")


def _preprocess_state(preprocessor: Any) -> tuple[dict[str, Any] | None, dict[str, np.ndarray]]:
    """(JSON part, tensors) of a :mod:`binarynet.data.preprocess` object's state (None: none)."""
    if preprocessor is None:
        return None, {}
    if not hasattr(preprocessor, "state_dict"):
        raise ExportError(
            "preprocessor must be a binarynet.data.preprocess object, got "
            f"{type(preprocessor).__name__}"
        )
    state = preprocessor.state_dict()
    arrays = {
        f"{PREPROCESS_PREFIX}{k}": np.ascontiguousarray(v, dtype=np.float32)
        for k, v in state.items()
        if isinstance(v, np.ndarray)
    }
    fields = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    return fields, arrays


def build_graph(
    model: nn.Module,
    /,
    input_shape: tuple[int, ...] | None = None,
    preprocessor: Any = None,
    **provenance: Any,
) -> tuple[Graph, dict[str, np.ndarray]]:
    """The graph and tensors of ``model`` without writing a file (see :func:`export`)."""
    if not isinstance(model, nn.Sequential):
        raise ExportError(
            f"export supports nn.Sequential models (the paper's networks), got "
            f"{type(model).__name__}"
        )
    leaves = list(_leaves(model))
    if not leaves or not isinstance(leaves[0][1], FixedPointInput):
        raise ExportError("the model must start with FixedPointInput (uint8 images in)")
    fixed = leaves[0][1]
    if input_shape is None:
        input_shape = _default_input_shape(model, provenance)
    input_shape = tuple(int(d) for d in input_shape)
    if not 1 <= len(input_shape) <= 3 or any(d < 1 for d in input_shape):
        raise ExportError(
            f"input_shape must be (F,), (H, W) or (C, H, W) with positive sizes, got {input_shape}"
        )
    spec = InputSpec(_engine_shape(input_shape), fixed.zero_point, fixed.scale)
    exporter = _Exporter(spec, input_shape)
    for where, module in leaves:
        exporter.add(where, module)
    exporter.finish()
    info = {
        "binarynet_version": binarynet.__version__,
        "torch_version": str(torch.__version__),
        "torch_input_shape": list(input_shape),
        **provenance,
    }
    try:
        info = json.loads(json.dumps(info, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ExportError(f"provenance must be JSON-serialisable: {exc}") from None
    if preprocessor is None:
        preprocessor = getattr(model, "preprocessor", None)  # set by read_checkpoint
    pre_fields, pre_tensors = _preprocess_state(preprocessor)
    scores = exporter.ops[-1]
    assert isinstance(scores, Scores)  # finish() appended it
    num_classes = exporter.tensors[scores.shift].shape[0]
    graph = Graph(spec, tuple(exporter.ops), num_classes, info, pre_fields)
    return graph, {**exporter.tensors, **pre_tensors}


def export(
    model: nn.Module,
    path: str | os.PathLike[str],
    /,
    *,
    input_shape: tuple[int, ...] | None = None,
    preprocessor: Any = None,
    **provenance: Any,
) -> Graph:
    """Write ``model`` (an ``nn.Sequential`` of binarynet layers) as a ``.bnn`` file.

    The model is exported as its evaluation-mode function (dropout off, batch norm with running
    statistics), whatever its current mode; nothing in it is modified.

    Args:
        model: e.g. :func:`binarynet.training.models.mnist_mlp` or
        :func:`~binarynet.training.models.cifar10_convnet`. path: the file to write (atomically).
        input_shape: the per-example torch input shape: ``(28, 28)`` or ``(784,)`` for an MLP,
            ``(C, H, W)`` for a ConvNet (the engine then takes NHWC ``[N, H, W, C]``). Default:
            from ``provenance["model"]`` for the paper's models, else ``(28, 28)`` for an MLP
            with 784 inputs or ``(in_features,)``; required for other ConvNets.
        preprocessor: the fitted :mod:`binarynet.data.preprocess` object the model was trained
            behind, stored in the file so that the engine applies it to raw images. Default:
            ``model.preprocessor`` when the model has one
            (:func:`binarynet.training.checkpoint.read_checkpoint` sets it), else none.
        **provenance: JSON-serialisable facts stored in the file, e.g. ``model="mnist-mlp"``,
            ``model_kwargs={...}``; binarynet's and torch's versions are added.

    Returns:
        The graph written (``graph.ops``, ``graph.input``, ...).

    Raises:
        ExportError: an unsupported module, arrangement or parameter (the message names it).
    """
    graph, tensors = build_graph(model, input_shape, preprocessor, **provenance)
    bnnfile.save(path, graph, tensors)
    return graph


def checkpoint_graph(
    checkpoint: str | os.PathLike[str] | LoadedCheckpoint,
) -> tuple[Graph, dict[str, np.ndarray]]:
    """The graph and tensors of a ``best.pt`` / ``last.pt`` checkpoint of ``binarynet train`` (a
    path, or a checkpoint already read by :func:`binarynet.training.checkpoint.read_checkpoint`),
    with the run's provenance, without writing a file: what :func:`export_checkpoint` writes, and
    what the other back-ends (:mod:`binarynet.backends.c`) take when given a checkpoint."""
    ckpt = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else read_checkpoint(checkpoint)
    cfg = ckpt.config
    provenance: dict[str, Any] = {
        "model": cfg.get("model"),
        "model_kwargs": cfg.get("model_kwargs", {}),
        "dataset": cfg.get("dataset"),
        "checkpoint": ckpt.path.name,
    }
    if ckpt.epoch is not None:
        provenance["epoch"] = ckpt.epoch
    if ckpt.metrics is not None:
        provenance["metrics"] = {
            k: float(v)
            for k, v in ckpt.metrics.items()
            if isinstance(v, (int, float)) and math.isfinite(v)
        }
    return build_graph(ckpt.model, **provenance)


def export_checkpoint(
    checkpoint: str | os.PathLike[str] | LoadedCheckpoint, path: str | os.PathLike[str]
) -> Graph:
    """Export the model of a ``best.pt`` / ``last.pt`` checkpoint of ``binarynet train`` (a path,
    or a checkpoint already read by :func:`binarynet.training.checkpoint.read_checkpoint`) as a
    ``.bnn`` file."""
    graph, tensors = checkpoint_graph(checkpoint)
    bnnfile.save(path, graph, tensors)
    return graph
