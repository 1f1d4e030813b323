"""Patterns: the captured ATen graph (:mod:`binarynet.export.capture`) → the ops of
:mod:`binarynet.graph.ops`, or a one-line refusal naming the op that has no exact equivalent.

The walk follows the input's value along the captured graph's data nodes, in graph order. Each
value has a *kind* that says what the deployed graph holds for it:

``raw``   the uint8 input                                 (before ``FixedPointInput``)
``u8``    (p − zero_point)·scale in float32               (``FixedPointInput``: to, sub, mul)
``int``   f(y): a binary layer's exact integers y, then float32 steps (bias, batch norm, …)
``bits``  ±1 values (a sign of an ``int``; its threshold is written before the next layer)

and each captured op is matched against the kind of its one data operand:

=====================================  =========  ==========================================
ATen op (what torch ran)               on         becomes
=====================================  =========  ==========================================
to(float32), sub(zp), mul(2^k)         raw, u8    the input spec (zero point, scale)
linear / conv2d, weights all ±1        u8, bits   ``dense`` / ``conv2d``, packed sign bits
add / sub / mul by a per-channel       int        a float32 step of f (bias, batch norm's
constant, neg                                     ``x·scale + shift``, a learned scale)
copysign(1, ·) (binarynet's sign),     int        ``threshold``: the interval of the
sign (torch.sign, where f(y) ≠ 0)                 integers y where it is +1
                                                  (:func:`binarynet.export.folding.predicate_interval`)
max_pool2d                             int        ``maxpool2d`` (if every step so far is
                                                  non-decreasing: max commutes with it)
max_pool2d                             bits       ``maxpool2d`` before the threshold, when
                                                  every channel's threshold is an up-set
                                                  (or constant): the max of ±1 values is
                                                  then the max of the integers, thresholded
flatten, view to [N, -1]               any        nothing (dense reads its input in order)
to(float32) of float32, clone,         any        nothing
dropout (eval), add 0, sign of ±1
=====================================  =========  ==========================================

The output must be an ``int`` value of shape [C] whose steps are the ``scores`` op's
(+ bias)·scale + shift. Anything else is refused by :func:`refuse` with the op's name, the
module it ran in and its source line.

**Flatten.** torch flattens (C, H, W); the engine keeps activations channels last (H, W, C), so
the first dense layer after a convolution gets its weight columns permuted to (H, W, C) order
and packed per position with the activations' channel padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from binarynet.export.capture import Captured, locate, module_path
from binarynet.export.folding import ExportError, Step, evaluate, predicate_interval
from binarynet.graph import thresholds
from binarynet.graph.ops import Conv2d, Dense, MaxPool2d, Op, Scores, Threshold
from binarynet.graph.values import MAX_EXACT, pack_bits

__all__ = ["SUPPORTED", "Matched", "match", "refuse"]

SUPPORTED = (
    "FixedPointInput, BinaryLinear / BinaryConv2d (±1 weights, on the 8-bit input or on ±1 "
    "values), per-channel float32 add / mul / neg after a layer (bias, binarynet batch norms, "
    "learned scales), sign (BinaryActivation, binarize; torch.sign where no value is 0), "
    "max-pool, flatten, dropout and identity"
)


def refuse(node: torch.fx.Node, reason: str) -> ExportError:
    """The one-line refusal of ``node``: its ATen op, where it came from, why, what is supported."""
    name = getattr(node.target, "_opname", None) or str(node.target)
    return ExportError(
        f"export: cannot represent {name!r} ({locate(node)}) exactly in a .bnn graph: {reason}; "
        f"supported: {SUPPORTED}"
    )


@dataclass
class _Pending:
    """A sign whose threshold op is written before the next layer (pools may come first)."""

    lo: np.ndarray
    hi: np.ndarray
    kinds: np.ndarray
    source: str | None


@dataclass
class _Value:
    kind: str  # "raw", "u8", "int", "bits"
    shape: tuple[int, ...]  # per-example torch shape
    flat_from: tuple[int, ...] | None = None  # the shape a flatten flattened
    u8_stage: int = 0  # raw → u8: 0 after to(float32), 1 after sub(zp), 2 after mul(scale)
    bound: int = 0  # int: the reachable |y|
    input_scale: float = 1.0  # int: y · input_scale is the layer's torch value
    steps: tuple[Step, ...] = ()  # int: the float32 steps of f after the layer
    pending: _Pending | None = None  # bits: the threshold to write
    pad: tuple[int, int, int] | None = None  # bits: (ph, pw, ±1) padding for the next conv


@dataclass
class Matched:
    """The result of :func:`match`: the ops, their tensors and the input's zero point and scale."""

    ops: list[Op] = field(default_factory=list)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    zero_point: int = 0
    scale: float = 1.0


_IDENTITY = {"clone", "contiguous", "alias", "detach", "lift_fresh_copy"}
_RESHAPE = {"view", "reshape", "_unsafe_view"}
_BATCH_NORMS = {
    "batch_norm",
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit",
    "native_batch_norm",
    "cudnn_batch_norm",
}


def _opname(node: torch.fx.Node) -> str:
    return getattr(node.target, "_opname", None) or str(node.target)


def _shape(node: torch.fx.Node) -> tuple[int, ...]:
    val = node.meta.get("val")
    return tuple(int(d) for d in val.shape[1:]) if isinstance(val, torch.Tensor) else ()


def _dtype(node: torch.fx.Node) -> torch.dtype | None:
    val = node.meta.get("val")
    return val.dtype if isinstance(val, torch.Tensor) else None


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    value = list(value)
    return (int(value[0]), int(value[-1])) if value else (0, 0)


class _Walk:
    def __init__(self, captured: Captured) -> None:
        self.cap = captured
        self.out = Matched()
        self.values: dict[torch.fx.Node, _Value] = {}

    # -- helpers -------------------------------------------------------------------------

    def _name(self, f: str) -> str:
        return f"op{len(self.out.ops)}.{f}"

    def _const(self, node: torch.fx.Node, arg: Any) -> Any:
        """The value of a constant operand (a tensor or a Python number)."""
        if isinstance(arg, torch.fx.Node):
            return self.cap.values[arg]
        return arg

    def _operands(self, node: torch.fx.Node) -> tuple[_Value, list[Any]]:
        """(the value of the one data operand, the positional arguments)."""
        data = [a for a in node.all_input_nodes if a in self.cap.data]
        if len(data) != 1:
            raise refuse(
                node,
                f"it combines {len(data)} computed values (a residual shortcut or a merge of "
                "branches); a .bnn graph is a chain, each op taking the previous op's output",
            )
        return self.values[data[0]], list(node.args)

    def _channel_const(self, node: torch.fx.Node, arg: Any, x: _Value) -> np.ndarray:
        """A constant operand of an elementwise op as float32 [C], if it is per channel."""
        c = x.shape[0]
        value = self._const(node, arg)
        if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
            raise refuse(node, f"its operand is {type(value).__name__}, not a number or tensor")
        if not isinstance(value, torch.Tensor):
            return np.full(c, value, dtype=np.float32)
        if value.dtype != torch.float32 and value.dim() > 0:
            raise refuse(node, f"its constant is {value.dtype}, not float32")
        dims = [1] * (1 + len(x.shape) - value.dim()) + list(value.shape)
        if (
            len(dims) != 1 + len(x.shape)
            or any(d != 1 for i, d in enumerate(dims) if i != 1)
            or dims[1] not in (1, c)
        ):
            raise refuse(
                node,
                f"its constant has shape {list(value.shape)}, not one value per channel of the "
                f"[{', '.join(map(str, x.shape))}] input",
            )
        flat = value.detach().to(torch.float32).reshape(-1).cpu().numpy()
        array = np.ascontiguousarray(np.broadcast_to(flat, (c,)), dtype=np.float32)
        if not np.all(np.isfinite(array)):
            raise refuse(node, f"its constant is not finite: {array[~np.isfinite(array)][:4]}")
        return array

    def _same_shape(self, node: torch.fx.Node, x: _Value) -> None:
        if _shape(node) != x.shape or _dtype(node) != torch.float32:
            raise refuse(
                node,
                f"its result is {_dtype(node)} {list(_shape(node))}, not the float32 "
                f"{list(x.shape)} of its input",
            )

    # -- the walk ------------------------------------------------------------------------

    def run(self) -> Matched:
        path = self.cap.path
        self.values[path[0]] = _Value("raw", _shape(path[0]))
        for node in path[1:]:
            self.values[node] = self._step(node)
        self._finish(self.cap.output, self.values[self.cap.output])
        return self.out

    def _step(self, node: torch.fx.Node) -> _Value:
        op = _opname(node)
        if op in _BATCH_NORMS:
            raise refuse(
                node,
                "torch's batch norm has no exact integer form; use binarynet.training.nn."
                "ExactBatchNorm1d/2d or ShiftBatchNorm1d/2d, whose evaluation forward "
                "(x·scale + shift in float32) export can fold exactly",
            )
        x, args = self._operands(node)
        if op in ("pad", "constant_pad_nd"):
            return self._pad(node, x, args)
        if x.pad is not None and op not in _IDENTITY and op != "conv2d":
            raise refuse(node, "±1 padding is exported as part of the binary convolution after it")
        if op in ("to", "_to_copy"):
            return self._to(node, x, args)
        if op in _IDENTITY or (op == "dropout" and not args[2]):
            return x
        if op == "flatten" or op in _RESHAPE:
            return self._flatten(node, x, args)
        if op in ("add", "sub", "mul", "neg", "rsub"):
            return self._elementwise(node, op, x, args)
        if op in ("copysign", "sign"):
            return self._sign(node, op, x, args)
        if op == "linear":
            return self._dense(node, x, args)
        if op == "conv2d":
            return self._conv(node, x, args)
        if op == "max_pool2d":
            return self._maxpool(node, x, args)
        raise refuse(node, "no .bnn op computes it")

    def _pad(self, node: torch.fx.Node, x: _Value, args: list[Any]) -> _Value:
        """F.pad of ±1 values with +1 or −1, the same amount on both sides of H and of W: the
        ``pad_value`` of the convolution that follows (BinaryConv2d(pad_value=±1))."""
        amounts = [int(a) for a in args[1]]
        mode = args[2] if _opname(node) == "pad" and len(args) > 2 else "constant"
        value = args[-1] if len(args) > (3 if _opname(node) == "pad" else 2) else 0.0
        value = node.kwargs.get("value", value)
        if x.kind != "bits" or x.pad is not None or mode != "constant" or len(x.shape) != 3:
            raise refuse(
                node,
                "padding has a .bnn form only for ±1 values ([C, H, W], padded once, with a "
                "constant) before a binary convolution; the 8-bit input is zero-padded by the "
                "convolution itself",
            )
        if len(amounts) != 4 or amounts[0] != amounts[1] or amounts[2] != amounts[3]:
            raise refuse(node, f"padding {amounts} (expected [pw, pw, ph, ph])")
        if value not in (1.0, -1.0):
            raise refuse(node, f"padding ±1 values with {value} (expected +1 or −1)")
        _, h, w = x.shape
        shape = (x.shape[0], h + 2 * amounts[2], w + 2 * amounts[0])
        sign = 1 if value == 1.0 else -1
        return replace(x, pad=(amounts[2], amounts[0], sign), shape=shape)

    def _to(self, node: torch.fx.Node, x: _Value, args: list[Any]) -> _Value:
        dtype = args[1] if len(args) > 1 else node.kwargs.get("dtype")
        if dtype != torch.float32:
            raise refuse(node, f"a conversion to {dtype}; the graph computes in float32")
        if x.kind == "raw":
            return _Value("u8", x.shape, x.flat_from)
        return x

    def _flatten(self, node: torch.fx.Node, x: _Value, args: list[Any]) -> _Value:
        shape = _shape(node)
        if len(shape) != 1 or math.prod(shape) != math.prod(x.shape):
            raise refuse(
                node,
                f"it reshapes [{', '.join(map(str, x.shape))}] to "
                f"[{', '.join(map(str, shape))}]; only a flatten from the dimension after the "
                "batch (nn.Flatten(), x.flatten(1), x.view(len(x), -1)) has a .bnn form",
            )
        if len(x.shape) == 1:
            return x
        return replace(x, shape=shape, flat_from=x.flat_from or x.shape)

    def _elementwise(self, node: torch.fx.Node, op: str, x: _Value, args: list[Any]) -> _Value:
        if node.kwargs.get("alpha", 1) != 1:
            raise refuse(node, "an add or sub with alpha ≠ 1")
        data_first = isinstance(args[0], torch.fx.Node) and args[0] in self.cap.data
        other = args[1] if data_first and len(args) > 1 else args[0] if len(args) > 1 else None
        if x.kind == "u8":
            if op == "add" and data_first and not np.any(self._channel_const(node, other, x)):
                return x  # + 0.0 (the sign function's): exact on (p − zp)·scale, never −0
            return self._input_scaling(node, op, x, other, data_first)
        if x.kind == "bits":
            if op in ("add", "sub") and data_first:
                zero = self._channel_const(node, other, x)
                if not np.any(zero):  # ±1 + 0: the sign function's +0.0
                    return x
            raise refuse(node, "arithmetic on ±1 values (after a sign) has no .bnn op")
        if x.kind != "int":
            raise refuse(node, "arithmetic on the uint8 input: use FixedPointInput")
        self._same_shape(node, x)
        if op == "neg":
            step = Step("neg", None, node)
        else:
            const = self._channel_const(node, other, x)
            if op == "rsub" or (op == "sub" and not data_first):
                raise refuse(node, "a constant minus a computed value")
            # fl(v − c) = fl(v + (−c)) exactly
            step = Step("add", -const, node) if op == "sub" else Step(op, const, node)
        return replace(x, steps=(*x.steps, step))

    def _input_scaling(
        self, node: torch.fx.Node, op: str, x: _Value, other: Any, data_first: bool
    ) -> _Value:
        value = self._const(node, other)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        integer = isinstance(value, (int, float)) and float(value).is_integer()
        if op == "sub" and data_first and x.u8_stage == 0 and integer and 0 <= value <= 255:
            self.out.zero_point = int(value)
            return replace(x, u8_stage=1)
        if op == "mul" and x.u8_stage <= 1 and isinstance(value, (int, float)) and value > 0:
            exponent = math.log2(value)
            if exponent == round(exponent):
                self.out.scale = float(value)
                return replace(x, u8_stage=2)
        raise refuse(
            node,
            "the 8-bit input must be FixedPointInput's (p − zero_point)·2^k with an integer "
            "zero point in 0..255",
        )

    def _sign(self, node: torch.fx.Node, op: str, x: _Value, args: list[Any]) -> _Value:
        if op == "copysign":
            magnitude = self._const(node, args[0])
            if not (
                isinstance(args[1], torch.fx.Node)
                and args[1] in self.cap.data
                and isinstance(magnitude, torch.Tensor)
                and magnitude.numel() == 1
                and float(magnitude) == 1.0
            ):
                raise refuse(node, "only copysign(1, x), binarynet's sign, has a .bnn form")
        if x.kind == "bits":
            return x  # the sign of ±1 values
        if x.kind == "u8":
            raise refuse(
                node,
                "the sign of the 8-bit input (binarize_input=True on the first layer) has no "
                ".bnn op; the first layer takes the fixed-point input as is "
                "(binarize_input=False)",
            )
        if x.kind != "int":
            raise refuse(node, "the sign of the uint8 input has no .bnn op")
        channels = x.shape[0]

        def values(y: np.ndarray) -> np.ndarray:  # y: one integer per channel
            return evaluate(y, x.input_scale, x.steps)

        if op == "copysign":
            lo, hi, kinds = predicate_interval(x.bound, channels, lambda y: ~np.signbit(values(y)))
        else:  # torch.sign: −1, 0 or +1, so exact only where no reachable f(y) is 0
            lo, hi, kinds = predicate_interval(x.bound, channels, lambda y: values(y) > 0)
            lo0, hi0, _ = predicate_interval(x.bound, channels, lambda y: values(y) >= 0)
            zero = np.flatnonzero((lo != lo0) | (hi != hi0))
            if zero.size:
                raise refuse(
                    node,
                    f"torch.sign gives 0 where its input is 0, and on channel {int(zero[0])} "
                    "some reachable integer gives 0 (a third value no .bnn op has); use "
                    "binarynet's sign (BinaryActivation, binarynet.training.quantize.binarize),"
                    " which gives +1 at 0",
                )
        pending = _Pending(lo, hi, kinds, module_path(node))
        return _Value("bits", x.shape, x.flat_from, pending=pending)

    def _write_threshold(self, x: _Value) -> _Value:
        if x.pending is not None:
            op = Threshold(self._name("lo"), self._name("hi"), x.pending.source)
            self.out.tensors[op.lo], self.out.tensors[op.hi] = x.pending.lo, x.pending.hi
            self.out.ops.append(op)
            x = replace(x, pending=None)
        return x

    def _weights(self, node: torch.fx.Node, arg: Any, what: str) -> np.ndarray:
        """The ±1 weights of a layer as booleans, True = −1."""
        if isinstance(arg, torch.fx.Node) and arg in self.cap.data:
            raise refuse(node, f"its {what} weights depend on the input")
        w = self._const(node, arg)
        if not isinstance(w, torch.Tensor) or w.dtype != torch.float32:
            raise refuse(node, "its weights are not a float32 tensor of ±1 values")
        w = w.detach().cpu()
        if not bool(((w == 1) | (w == -1)).all()):
            raise refuse(
                node,
                f"its weights are not all ±1 (a real-valued {what}); a .bnn layer has "
                "binarized weights: use BinaryLinear / BinaryConv2d",
            )
        return (w < 0).numpy()

    def _layer_input(self, node: torch.fx.Node, x: _Value) -> _Value:
        if x.kind == "raw":
            raise refuse(
                node,
                "a layer on the uint8 input; the model must start with "
                "FixedPointInput (uint8 images in)",
            )
        if x.kind == "int":
            raise refuse(
                node,
                "a layer on real values (a layer's output without a sign); a .bnn layer takes "
                "the 8-bit input or ±1 values: add a BinaryActivation before it, or "
                "binarize_input=True",
            )
        return self._write_threshold(x)

    def _no_bias(self, node: torch.fx.Node, args: list[Any]) -> None:
        if len(args) > 2 and args[2] is not None:
            raise refuse(
                node,
                "a bias inside the layer's call (F.linear(x, w, b)) may be added before the "
                "products are summed; add it separately (BinaryLinear(bias=True) does)",
            )

    def _after_layer(
        self, node: torch.fx.Node, x: _Value, k: int, shape: tuple[int, ...]
    ) -> _Value:
        zp = self.out.zero_point
        u8 = x.kind == "u8"
        bound = k * (max(zp, 255 - zp) if u8 else 1)
        if bound > MAX_EXACT:
            raise refuse(
                node,
                f"its pre-activations reach ±{bound}, beyond the ±2²⁴ where torch's float32 "
                "sums are exact",
            )
        if _shape(node) != shape:  # pragma: no cover - torch computed the same shape
            raise refuse(node, f"its output shape {list(_shape(node))} is not {list(shape)}")
        return _Value("int", shape, bound=bound, input_scale=self.out.scale if u8 else 1.0)

    def _dense(self, node: torch.fx.Node, x: _Value, args: list[Any]) -> _Value:
        x = self._layer_input(node, x)
        self._no_bias(node, args)
        if len(x.shape) != 1:
            raise refuse(
                node,
                f"a linear layer on a [{', '.join(map(str, x.shape))}] input acts on its last "
                "dimension only; add an nn.Flatten before it",
            )
        neg = self._weights(node, args[1], "linear")
        out, k = neg.shape
        if x.flat_from is not None:
            source_shape = x.flat_from
            neg = neg.reshape(out, *source_shape)
            if len(source_shape) == 3:  # columns (C, H, W) → the engine's (H, W, C)
                neg = neg.transpose(0, 2, 3, 1)
        if x.kind == "u8" or neg.ndim == 2:
            packed = pack_bits(np.ascontiguousarray(neg.reshape(out, k)))
        else:
            packed = pack_bits(np.ascontiguousarray(neg))
        op = Dense(out, self._name("weight"), module_path(node))
        self.out.tensors[op.weight] = packed
        self.out.ops.append(op)
        return self._after_layer(node, x, k, (out,))

    def _conv(self, node: torch.fx.Node, x: _Value, args: list[Any]) -> _Value:
        x = self._layer_input(node, x)
        self._no_bias(node, args)
        if len(x.shape) != 3 or x.flat_from is not None:
            raise refuse(node, f"a convolution needs a [C, H, W] input, got {list(x.shape)}")
        neg = self._weights(node, args[1], "convolution")
        out, c, kh, kw = neg.shape
        stride = _pair(args[3] if len(args) > 3 else 1)
        padding_arg = args[4] if len(args) > 4 else 0
        dilation = _pair(args[5] if len(args) > 5 else 1)
        groups = args[6] if len(args) > 6 else 1
        if groups != 1 or dilation != (1, 1):
            raise refuse(
                node,
                f"groups={groups}, dilation={list(dilation)} (a .bnn convolution has groups=1 "
                "and dilation 1)",
            )
        if padding_arg == "valid":
            padding = (0, 0)
        elif padding_arg == "same":
            if kh % 2 == 0 or kw % 2 == 0 or stride != (1, 1):
                raise refuse(node, "padding='same' with an even kernel or a stride")
            padding = ((kh - 1) // 2, (kw - 1) // 2)
        else:
            padding = _pair(padding_arg)
        pad_value = 0
        if x.pad is not None:  # ±1 padding, then an unpadded convolution
            if padding != (0, 0):
                raise refuse(node, "a convolution that pads again after F.pad")
            ph, pw, pad_value = x.pad
            padding = (ph, pw)
            x = replace(x, pad=None, shape=(x.shape[0], x.shape[1] - 2 * ph, x.shape[2] - 2 * pw))
        op = Conv2d(
            out, (kh, kw), stride, padding, self._name("weight"), module_path(node), pad_value
        )
        _, h, w = x.shape
        ho, wo = op.output_hw(h, w)
        neg = neg.transpose(0, 2, 3, 1)  # O, kh, kw, C
        if x.kind == "u8":
            packed = pack_bits(np.ascontiguousarray(neg.reshape(out, kh * kw * c)))
        else:
            packed = pack_bits(np.ascontiguousarray(neg))
        self.out.tensors[op.weight] = packed
        self.out.ops.append(op)
        return self._after_layer(node, x, kh * kw * c, (out, ho, wo))

    def _maxpool(self, node: torch.fx.Node, x: _Value, args: list[Any]) -> _Value:
        kernel = _pair(args[1])
        stride = _pair(args[2]) if len(args) > 2 and list(args[2]) else kernel
        padding = _pair(args[3]) if len(args) > 3 else (0, 0)
        dilation = _pair(args[4]) if len(args) > 4 else (1, 1)
        ceil_mode = bool(args[5]) if len(args) > 5 else False
        if padding != (0, 0) or dilation != (1, 1) or ceil_mode:
            raise refuse(
                node,
                f"padding={list(padding)}, dilation={list(dilation)}, ceil_mode={ceil_mode}; "
                "only padding=0, dilation=1, ceil_mode=False is supported",
            )
        if len(x.shape) != 3 or x.flat_from is not None:
            raise refuse(node, f"a max-pool needs a [C, H, W] input, got {list(x.shape)}")
        if x.kind == "int":
            bad = [s for s in x.steps if not s.non_decreasing]
            if bad:
                raise refuse(
                    node,
                    f"it follows a step that reverses or flattens the order ({_opname(bad[0].node)}"
                    f" at {locate(bad[0].node)}: a negative or zero factor), so the max is not "
                    "the max of the layer's integers; pool before the batch norm",
                )
        elif x.kind == "bits":
            if x.pending is None:  # pragma: no cover - every bits value has a pending sign
                raise refuse(node, "a max-pool of ±1 values that are not a layer's sign")
            down = np.flatnonzero(x.pending.kinds == thresholds.Kind.DOWN)
            if down.size:
                raise refuse(
                    node,
                    "max-pool of ±1 values after the sign is the max of the integers before "
                    "it only where the sign rises with them; channels "
                    f"{down[:8].tolist()} fall (a negative batch-norm scale), where it would be a "
                    "min: put the pool before the batch norm",
                )
            # max-pool of ±1 values is an AND/OR of bits: the threshold of the pooled integers.
        else:
            raise refuse(node, "a max-pool of the 8-bit input has no .bnn op")
        op = MaxPool2d(kernel, stride, module_path(node))
        c, h, w = x.shape
        if kernel[0] > h or kernel[1] > w:  # pragma: no cover - torch refuses it first
            raise refuse(node, f"window {list(kernel)} exceeds {h}×{w}")
        self.out.ops.append(op)
        return replace(x, shape=(c, *op.output_hw(h, w)))

    def _finish(self, node: torch.fx.Node, x: _Value) -> None:
        steps = list(x.steps)
        if x.kind != "int" or len(x.shape) != 1 or len(steps) < 2:
            raise ExportError(
                "export: the model must end with BinaryLinear → batch norm producing the class "
                f"scores; it ends with {x.kind!r} values of shape {list(x.shape)}"
                + (f" ({locate(node)})" if node is not None else "")
            )
        shift, scale = steps.pop(), steps.pop()
        bias = steps.pop() if steps and steps[-1].kind == "add" else None
        for found, want in ((shift, "add"), (scale, "mul")):
            if found.kind != want:
                raise refuse(
                    found.node,
                    "the class scores must be the last layer's integers (+ bias)·scale + shift "
                    "(a binarynet batch norm), and this op comes after that",
                )
        if steps:
            raise refuse(
                steps[-1].node,
                "the class scores must be the last layer's integers (+ bias)·scale + shift "
                "(a binarynet batch norm); this extra step before the batch norm has no "
                "place in the scores op",
            )
        op = Scores(
            x.input_scale,
            self._name("bias") if bias is not None else None,
            self._name("scale"),
            self._name("shift"),
        )
        if op.bias is not None and bias is not None and bias.const is not None:
            self.out.tensors[op.bias] = bias.const
        assert scale.const is not None and shift.const is not None
        self.out.tensors[op.scale] = scale.const
        self.out.tensors[op.shift] = shift.const
        self.out.ops.append(op)


def match(captured: Captured) -> Matched:
    """The ops and tensors of a captured model (see the module docstring), or an
    :class:`~binarynet.export.folding.ExportError` naming the first op that has no exact form."""
    return _Walk(captured).run()
