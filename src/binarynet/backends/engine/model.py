"""A loaded ``.bnn`` model, run on the compiled XNOR-popcount kernels.

The graph (ops and their maths: :mod:`binarynet.graph.ops`) is grouped into *stages* by op role: a
binary layer (``dense`` or ``conv2d``), the pools after it (``maxpool2d``), and the activation
(``threshold``, → bits for the next layer) or ``scores`` (→ float32) that consumes its integers.
The planner, :class:`_Planner`, is the engine's back-end: a
:class:`binarynet.graph.visitor.GraphVisitor` whose ``visit_<type>`` methods turn each op into the
object that runs it (a layer run with its exact and fused kernels, a pool run, a stage). A stage
runs as:

- uint8 input (the first layer, Algorithm 5's exact integers Σ pᵢwᵢ): the byte GEMM
  ``u8gemm`` (dense) or ``u8conv2d`` (convolutions, its rows built per task, padded taps reading
  the zero point so that they contribute 0) on weights prepared once at load; y = Σ pᵢwᵢ − zp·Σwᵢ,
  the constant folded into the thresholds, so a threshold stage is one fused call
  (``u8gemm_threshold`` / ``u8conv2d_threshold``) → bits.
- bits input, followed by a threshold: one fused call, ``bgemm_threshold`` or
  ``bconv2d_threshold``. Dense weights are prepared at load with a panel copy, which batches of
  1 to 3 stream (8 outputs per vector load, no horizontal sums).
- max-pooling after a threshold runs on the bits with ``maxpool2d_bits`` (AND for up-set
  channels, OR for down-set ones; proof in :mod:`binarynet.export`). A channel whose interval is
  neither (only a hand-made file has one) makes the stage pool the integers instead.
- a dense layer over a flattened [H, W, C] value whose C is not a multiple of 64 keeps the
  activations' per-position channel padding: it runs ``bgemm`` over all 64·W word bits, which
  adds D = 64·W − K (zero padding bits agree, +1 each) to every dot product; the thresholds are
  shifted by D instead (y' = y + D, so lo ≤ y ≤ hi ⇔ lo + D ≤ y' ≤ hi + D).
- the last stage: y → float32 scores with :func:`binarynet.graph.values.affine_eval`, the same
  float32 operations as torch's batch norm.

:meth:`Model.preactivations` runs the stages unfused and returns every layer's integers y.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from binarynet.backends.engine.kernels import Kernels, threshold_bits
from binarynet.graph import bnnfile, thresholds
from binarynet.graph.graph import Graph
from binarynet.graph.ops import Conv2d, Dense, LayerOp, MaxPool2d, Scores, Threshold
from binarynet.graph.values import INT32_MAX, INT32_MIN, ValueInfo, affine_eval, pack_bits
from binarynet.graph.visitor import GraphVisitor

__all__ = ["Model", "load"]

BATCH_BYTES = 64 << 20
"""Working memory the engine aims at per chunk of a batch (intermediate values)."""


# --------------------------------------------------------------------------------------------
# Stages: small objects that own their run (exact and fused), built by the planner (a visitor)
# --------------------------------------------------------------------------------------------


class _LayerRun:
    """How one binary layer runs: its exact integers and, when a threshold follows, its fused
    kernel (→ bits). Built by :class:`_Planner` from the layer op and the prepared weight."""

    k: int  # real elements of one reduction (the kernel's k or c argument)
    k_call: int  # the k passed to the kernel (64·words for a padded dense, else k)
    offset: np.ndarray | None = None  # int32 [O] added to the kernel's result to give y
    weight: np.ndarray
    workspace: int = 0  # bytes per example beyond the values (a uint8 convolution's patches)

    def exact(self, be: Kernels, v: np.ndarray) -> np.ndarray:
        """The kernel's int32 result (y − offset)."""
        raise NotImplementedError

    def threshold(self, be: Kernels, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The fused kernel: packed bits, +1 iff lo ≤ exact(v) ≤ hi."""
        raise NotImplementedError


def _flat(v: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(v.reshape(v.shape[0], -1))


class _DenseU8(_LayerRun):
    """A dense layer on the uint8 input: the byte GEMM on weights prepared at load."""

    def __init__(self, weight: np.ndarray, k: int, offset: np.ndarray) -> None:
        self.weight, self.k, self.k_call, self.offset = weight, k, k, offset
        self.u8w = Kernels.u8_weights(weight, k)

    def exact(self, be: Kernels, v: np.ndarray) -> np.ndarray:
        return be.u8gemm(_flat(v), self.u8w)

    def threshold(self, be: Kernels, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return be.u8gemm_threshold(_flat(v), self.u8w, lo, hi)


class _DenseBits(_LayerRun):
    """A dense layer on bits: bgemm on the weight with its batch-1 panels (all 64·W word bits
    when the flattened channels are padded, the difference folded into ``offset``)."""

    def __init__(self, weight: np.ndarray, k: int) -> None:
        out = weight.shape[0]
        self.weight = weight.reshape(out, -1)
        self.k, self.k_call = k, 64 * self.weight.shape[1]
        if self.k_call != k:
            self.offset = np.full(out, k - self.k_call, dtype=np.int32)
        self.bw = Kernels.binary_weights(self.weight, self.k_call)

    def exact(self, be: Kernels, v: np.ndarray) -> np.ndarray:
        return be.bgemm(_flat(v), self.bw, self.k_call)

    def threshold(self, be: Kernels, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return be.bgemm_threshold(_flat(v), self.bw, self.k_call, lo, hi)


class _ConvU8(_LayerRun):
    """A convolution on the uint8 input: ``u8conv2d``, padded taps reading the zero point."""

    def __init__(
        self, op: Conv2d, weight: np.ndarray, k: int, offset: np.ndarray, zp: int, y: ValueInfo
    ) -> None:
        self.op, self.weight, self.k, self.k_call, self.offset, self.zp = (
            op,
            weight,
            k,
            k,
            offset,
            zp,
        )
        self.u8w = Kernels.u8_weights(weight, k)
        ho, wo, _ = y.shape
        self.workspace = ho * wo * k  # the im2col patches

    def exact(self, be: Kernels, v: np.ndarray) -> np.ndarray:
        op = self.op
        return be.u8conv2d(v, self.u8w, op.kernel_size, op.stride, op.padding, self.zp)

    def threshold(self, be: Kernels, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        op = self.op
        return be.u8conv2d_threshold(
            v, self.u8w, op.kernel_size, op.stride, op.padding, self.zp, lo, hi
        )


class _ConvBits(_LayerRun):
    """A convolution on bits: ``bconv2d`` over the [O, kh, kw, words] weight (k = C).

    Zero padding runs in the kernel (its border correction: a padded tap contributes 0). A ±1
    ``pad_value`` is a plain convolution over the input padded with that activation's bits
    (+1: all bits 0; −1: the C real bits of each position's words set, the padding bits 0), so
    the kernel runs unpadded, with no correction."""

    def __init__(self, op: Conv2d, weight: np.ndarray, c: int) -> None:
        self.op, self.weight, self.k, self.k_call = op, weight, c, c
        self.padding = (0, 0) if op.pad_value else op.padding
        self.pad_word = pack_bits(np.full(c, op.pad_value < 0))  # one position's words

    def _padded(self, v: np.ndarray) -> np.ndarray:
        if not self.op.pad_value:
            return v
        (ph, pw), (b, h, w, words) = self.op.padding, v.shape
        out = np.empty((b, h + 2 * ph, w + 2 * pw, words), dtype=np.uint64)
        out[...] = self.pad_word
        out[:, ph : ph + h, pw : pw + w] = v
        return out

    def exact(self, be: Kernels, v: np.ndarray) -> np.ndarray:
        return be.bconv2d(self._padded(v), self.weight, self.k, self.op.stride, self.padding)

    def threshold(self, be: Kernels, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return be.bconv2d_threshold(
            self._padded(v), self.weight, self.k, self.op.stride, self.padding, lo, hi
        )


@dataclass
class _MaxPoolRun:
    """A ``maxpool2d`` op: on the integers, or on thresholded bits with the AND/OR rule."""

    op: MaxPool2d

    def int32(self, be: Kernels, y: np.ndarray) -> np.ndarray:
        return np.asarray(be.maxpool2d_int32(y, self.op.kernel_size, self.op.stride))

    def bits(self, be: Kernels, x: np.ndarray, and_mask: np.ndarray) -> np.ndarray:
        return be.maxpool2d_bits(x, self.op.kernel_size, self.op.stride, and_mask)


@dataclass
class _Stage:
    """A binary layer with its pools and the threshold or scores op that follows."""

    index: int  # the layer's op index
    layer: LayerOp
    x: ValueInfo  # the layer's input value
    y: ValueInfo  # its integer output (before pooling)
    run: _LayerRun
    pools: tuple[_MaxPoolRun, ...]

    def exact(self, be: Kernels, v: np.ndarray) -> np.ndarray:
        """The integers y of the layer (exact, unfused), [B, *y.shape]."""
        raw = np.asarray(self.run.exact(be, v))
        if self.run.offset is not None:
            raw += self.run.offset
        return raw

    def pool_int32(self, be: Kernels, y: np.ndarray) -> np.ndarray:
        for pool in self.pools:
            y = pool.int32(be, y)
        return y

    def finish(self, be: Kernels, y: np.ndarray) -> np.ndarray:
        """Pools, then the tail (threshold or scores), on the integers y."""
        raise NotImplementedError

    def fast(self, be: Kernels, v: np.ndarray) -> np.ndarray:
        """The stage's output from its input, fused where a kernel allows."""
        return self.finish(be, self.exact(be, v))


@dataclass
class _ThresholdStage(_Stage):
    """... → ``threshold``: one fused call where possible (→ bits), pools on the bits."""

    lo: np.ndarray  # the threshold's interval on y
    hi: np.ndarray
    lo_call: np.ndarray  # the same on the kernel's result (shifted by −offset)
    hi_call: np.ndarray
    and_mask: np.ndarray | None  # uint64 [words]: the pooling rule on bits; None: pool integers

    def finish(self, be: Kernels, y: np.ndarray) -> np.ndarray:
        return threshold_bits(self.pool_int32(be, y), self.lo, self.hi)

    def fast(self, be: Kernels, v: np.ndarray) -> np.ndarray:
        if self.pools and self.and_mask is None:
            return self.finish(be, self.exact(be, v))
        out = self.run.threshold(be, v, self.lo_call, self.hi_call)
        for pool in self.pools:
            assert self.and_mask is not None  # pools on bits need the rule (checked above)
            out = pool.bits(be, out, self.and_mask)
        return out


@dataclass
class _ScoresStage(_Stage):
    """... → ``scores``: the exact integers, then float32 scores as torch computes them."""

    scores_args: tuple[Any, ...]

    def finish(self, be: Kernels, y: np.ndarray) -> np.ndarray:
        return affine_eval(self.pool_int32(be, y), *self.scores_args)


@dataclass(frozen=True)
class _Tail:
    """A visited tail op (threshold or scores): what turns a layer and its pools into a
    stage of its kind."""

    make: Callable[[_Stage], _Stage]


_Part = _LayerRun | _MaxPoolRun | _Tail
_P = TypeVar("_P", _LayerRun, _MaxPoolRun, _Tail)
"""What the planner returns for one op: a layer's run, a pool's run or a tail."""


class _Planner(GraphVisitor[_Part]):
    """The engine's back-end: visits the graph's ops and groups them into stages by role
    (layer, pools, then activation or scores)."""

    def __init__(
        self, graph: Graph, values: list[ValueInfo], tensors: dict[str, np.ndarray]
    ) -> None:
        self.graph, self.values, self.tensors = graph, values, tensors

    def _visit(self, i: int, kind: type[_P]) -> _P:
        part = self.graph.ops[i].accept(self, self.values[i], self.values[i + 1])
        assert isinstance(part, kind), f"op {i}: {part!r} in place of a {kind.__name__}"
        return part

    def plan(self) -> list[_Stage]:
        stages: list[_Stage] = []
        for span in self.graph.stages():
            i, layer = span.layer, self.graph.ops[span.layer]
            assert isinstance(layer, LayerOp)  # Graph.stages checked its role
            run = self._visit(i, _LayerRun)
            pools = tuple(self._visit(j, _MaxPoolRun) for j in span.pools)
            base = _Stage(i, layer, self.values[i], self.values[i + 1], run, pools)
            stages.append(self._visit(span.tail, _Tail).make(base))
        return stages

    def visit_dense(self, op: Dense, x: ValueInfo, y: ValueInfo) -> _Part:
        weight = self.tensors[op.weight]
        k = op.reduction_size(x)
        if x.kind == "u8":
            return _DenseU8(weight, k, op.u8_offset(x, self.tensors, self.graph.input.zero_point))
        return _DenseBits(weight, k)

    def visit_conv2d(self, op: Conv2d, x: ValueInfo, y: ValueInfo) -> _Part:
        weight = self.tensors[op.weight]
        if x.kind == "u8":
            k = op.reduction_size(x)
            zp = self.graph.input.zero_point
            return _ConvU8(op, weight, k, op.u8_offset(x, self.tensors, zp), zp, y)
        return _ConvBits(op, weight, x.shape[-1])

    def visit_maxpool2d(self, op: MaxPool2d, x: ValueInfo, y: ValueInfo) -> _Part:
        return _MaxPoolRun(op)

    def visit_threshold(self, op: Threshold, x: ValueInfo, y: ValueInfo) -> _Part:
        lo, hi = self.tensors[op.lo], self.tensors[op.hi]

        def make(s: _Stage) -> _Stage:
            shift = 0 if s.run.offset is None else s.run.offset.astype(np.int64)
            return _ThresholdStage(
                **vars(s),
                lo=lo,
                hi=hi,
                lo_call=_clip32(lo.astype(np.int64) - shift),
                hi_call=_clip32(hi.astype(np.int64) - shift),
                and_mask=_and_mask(lo, hi, s.y.bound),
            )

        return _Tail(make)

    def visit_scores(self, op: Scores, x: ValueInfo, y: ValueInfo) -> _Part:
        bias = self.tensors[op.bias] if op.bias is not None else None
        args = (op.input_scale, bias, self.tensors[op.scale], self.tensors[op.shift])
        return _Tail(lambda s: _ScoresStage(**vars(s), scores_args=args))


def _clip32(values: np.ndarray) -> np.ndarray:
    return np.clip(values, INT32_MIN, INT32_MAX).astype(np.int32)


class Model:
    """A ``.bnn`` model ready to run. Create it with :func:`binarynet.backends.engine.load`.

    Inputs are uint8 ``[N, *input_shape]`` with channels last (NHWC for images with channels;
    ``[N, 28, 28]`` or ``[N, 784]`` for the MNIST MLP: a model whose first layer is dense also
    takes the flattened ``[N, F]``). A non-contiguous array is copied first; any other dtype is
    an error (convert pixels with ``astype(np.uint8)`` only if they are 0..255 integers).
    Batches are processed in chunks so that intermediate values stay near 64 MiB.

    Attributes:
        graph: the validated graph; ``info`` describes it.
        threads: kernel threads (None: the kernels' default); settable.
        kernel: the bgemm/bconv kernel variant (None: the best one for this CPU).
        preprocessor: the :mod:`binarynet.data.preprocess` object stored in the file (applied to raw
            images by default, see :meth:`scores`), or None.
    """

    def __init__(
        self,
        bnn: bnnfile.BNNFile,
        *,
        kernel: str | None = None,
        threads: int | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.graph = bnn.graph
        self.preprocessor = bnn.preprocessor
        self.path = None if path is None else Path(path)
        self._file_size = bnn.size
        self._tensors = bnn.tensors
        self._values = bnn.values
        self._kernels = Kernels(kernel, threads)
        self._stages = self._plan()
        self._chunk_bytes = self._bytes_per_example()

    # -- properties --
    @property
    def threads(self) -> int | None:
        return self._kernels.threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self._kernels = Kernels(self.kernel, value)

    @property
    def kernel(self) -> str | None:
        return self._kernels.kernel

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-example input shape (channels last)."""
        return self.graph.input.shape

    @property
    def num_classes(self) -> int:
        return self.graph.num_classes

    @property
    def info(self) -> dict[str, Any]:
        """A description: format, input, ops with their values, sizes, provenance, kernels."""
        ops = []
        for i, op in enumerate(self.graph.ops):
            x, y = self._values[i], self._values[i + 1]
            ops.append(f"{op.type} {x.describe()} → {y.describe()}")
        spec = self.graph.input
        return {
            "format": f"{bnnfile.FORMAT} v{bnnfile.VERSION}",
            "path": None if self.path is None else str(self.path),
            "input": {
                "layout": spec.layout,
                "shape": list(spec.shape),
                "dtype": "uint8",
                "zero_point": spec.zero_point,
                "scale": spec.scale,
            },
            "preprocess": None if self.preprocessor is None else repr(self.preprocessor),
            "num_classes": self.num_classes,
            "ops": ops,
            "binary_layers": len(self._stages),
            "file_bytes": self._file_size,
            "provenance": dict(self.graph.provenance),
            "kernel": self.kernel,
            "threads": self.threads,
        }

    def __repr__(self) -> str:
        spec = self.graph.input
        name = self.graph.provenance.get("model") or (self.path.name if self.path else "bnn")
        pre = "" if self.preprocessor is None else f", preprocess={self.preprocessor.kind!r}"
        return (
            f"Model({name!r}, input uint8 {spec.layout} {list(spec.shape)}{pre} → "
            f"{self.num_classes} classes, {len(self._stages)} binary layers, "
            f"{self._file_size / 1e6:.2f} MB, kernel={self.kernel!r}, threads={self.threads})"
        )

    # -- planning --
    def _plan(self) -> list[_Stage]:
        return _Planner(self.graph, self._values, self._tensors).plan()

    def _bytes_per_example(self) -> int:
        largest = max(v.nbytes for v in self._values)
        for stage in self._stages:
            largest = max(largest, stage.run.workspace)
        return 3 * largest  # a value, its successor and temporaries

    # -- running --
    def _run(self, x: np.ndarray, collect: list[list[np.ndarray]] | None) -> np.ndarray:
        v = x
        be = self._kernels
        for n, s in enumerate(self._stages):
            if collect is None:
                v = s.fast(be, v)
            else:
                y = s.exact(be, v)
                collect[n].append(y)
                v = s.finish(be, y)
        return v

    def _prepare(self, x: Any, preprocess: bool) -> np.ndarray:
        spec = self.graph.input
        if not isinstance(x, np.ndarray):
            raise TypeError(f"expected a NumPy uint8 array, got {type(x).__name__}")
        if x.dtype != np.uint8:
            raise TypeError(
                f"expected uint8 pixels, got dtype {x.dtype}; the engine takes the raw uint8 "
                "images (as binarynet.data returns them)"
            )
        shapes = [spec.shape]
        if self._stages[0].layer.flattens and len(spec.shape) > 1:
            shapes.append((math.prod(spec.shape),))
        if x.ndim < 1 or x.shape[1:] not in shapes:
            accepted = " or ".join(str(["N", *s]) for s in shapes)
            raise ValueError(
                f"expected images of shape {accepted} ({spec.layout}, channels last), got "
                f"{list(x.shape)}"
            )
        x = np.ascontiguousarray(x).reshape(x.shape[0], *spec.shape)
        if preprocess and self.preprocessor is not None and len(x):
            x = np.ascontiguousarray(self.preprocessor.transform(x))
        return x

    def working_bytes(self, n: int) -> int:
        """About the bytes a call of :meth:`scores` (or :meth:`predict`) on ``n`` examples
        allocates besides the weights and its input: the preprocessed copy of the input (when
        the file has a preprocessor), the float32 scores, the int64 predictions and one chunk's
        intermediate values."""
        copy = math.prod(self.input_shape) if self.preprocessor is not None else 0
        chunk = min(n, self._chunks(n).step) * self._chunk_bytes
        return n * (copy + 4 * self.num_classes + 8) + chunk

    def _chunks(self, n: int) -> range:
        return range(0, n, max(1, BATCH_BYTES // max(self._chunk_bytes, 1)))

    def scores(self, x: np.ndarray, *, preprocess: bool = True) -> np.ndarray:
        """float32 [N, num_classes]: the class scores, bit-identical to the torch model's.

        ``x``: uint8 images ``[N, *input_shape]``. With ``preprocess`` (the default) the file's
        preprocessor, if any, is applied first, as the training run did before the torch model;
        ``preprocess=False`` feeds ``x`` to the network as is.
        """
        x = self._prepare(x, preprocess)
        out = np.empty((len(x), self.num_classes), dtype=np.float32)
        step = self._chunks(len(x)).step
        for start in self._chunks(len(x)):
            out[start : start + step] = self._run(x[start : start + step], None)
        return out

    def predict(self, x: np.ndarray, *, preprocess: bool = True) -> np.ndarray:
        """int64 [N]: the predicted classes, argmax of :meth:`scores` (the first on ties, as
        torch's argmax)."""
        return self.scores(x, preprocess=preprocess).argmax(axis=1).astype(np.int64)

    def preactivations(self, x: np.ndarray, *, preprocess: bool = True) -> list[np.ndarray]:
        """The integer pre-activation y of every binary layer, int32, before pooling.

        ``[N, out_features]`` for dense layers, ``[N, Ho, Wo, out_channels]`` (channels last)
        for convolutions. The torch layer's output is y·input_scale (2⁻⁷·y for the first
        layer, y elsewhere; plus its bias, if it has one), exactly.
        """
        x = self._prepare(x, preprocess)
        collect: list[list[np.ndarray]] = [[] for _ in self._stages]
        step = self._chunks(len(x)).step
        for start in self._chunks(len(x)):
            self._run(x[start : start + step], collect)
        return [
            np.concatenate(parts) if parts else np.empty((0, *s.y.shape), dtype=np.int32)
            for s, parts in zip(self._stages, collect, strict=True)
        ]


def _and_mask(lo: np.ndarray, hi: np.ndarray, bound: int) -> np.ndarray | None:
    """Packed per-channel pooling rule for thresholded bits (bit 1: AND, 0: OR; see
    :mod:`binarynet.graph.thresholds`), or None when a channel is INSIDE (no bit rule)."""
    kinds = thresholds.classify(lo, hi, bound)
    if np.any(kinds == thresholds.Kind.INSIDE):
        return None
    return pack_bits(kinds != thresholds.Kind.DOWN)  # OR for down-sets, AND for the rest


def load(
    path: str | os.PathLike[str], *, threads: int | None = None, kernel: str | None = None
) -> Model:
    """Load and validate a ``.bnn`` file (see :mod:`binarynet.graph.bnnfile`).

    Args:
        path: the model file.
        threads: kernel threads (None: the kernels' default); also settable as ``model.threads``.
        kernel: force a bgemm/bconv kernel variant, one of
            ``binarynet._kernels.available_kernels()`` (tests use it); None picks the best.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        binarynet.graph.bnnfile.BNNFileError: the file is malformed, corrupt or unsupported (the
            message says what is wrong); a ``ValueError``.
    """
    return Model(bnnfile.load(path), kernel=kernel, threads=threads, path=path)
