"""A loaded ``.bnn`` model, run on the compiled XNOR-popcount kernels.

The graph (see :mod:`binarynet.bnnfile`) is grouped into *stages*: a binary layer (``dense`` or
``conv2d``), the ``maxpool2d`` ops after it, and the ``threshold`` (→ bits for the next layer) or
``scores`` (→ float32) that consumes its integers. A stage runs as:

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
- the last stage: y → float32 scores with :func:`binarynet.bnnfile.affine_eval`, the same
  float32 operations as torch's batch norm.

:meth:`Model.preactivations` runs the stages unfused and returns every layer's integers y.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from binarynet import bnnfile
from binarynet.bnnfile import (
    INT32_MAX,
    INT32_MIN,
    Conv2d,
    Dense,
    MaxPool2d,
    Scores,
    Threshold,
    ValueInfo,
    affine_eval,
    unpack_bits,
)
from binarynet.engine._backend import Backend, threshold_bits

__all__ = ["Model", "load"]

BATCH_BYTES = 64 << 20
"""Working memory the engine aims at per chunk of a batch (intermediate values)."""


@dataclass
class _Stage:
    """A binary layer with its pools and the threshold or scores op that follows."""

    index: int  # the layer's op index
    layer: Dense | Conv2d
    x: ValueInfo  # the layer's input value
    y: ValueInfo  # its integer output (before pooling)
    pools: tuple[MaxPool2d, ...]
    tail: Threshold | Scores
    weight: np.ndarray  # 2-D [O, words] except for a bits convolution: [O, kh, kw, words]
    k: int  # real elements of one reduction
    k_call: int  # the k passed to the kernel (64·words for a padded dense, else k)
    offset: np.ndarray | None  # int32 [O] added to the kernel's result to give y
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    lo_call: np.ndarray | None = None  # thresholds on the kernel's result (shifted by −offset)
    hi_call: np.ndarray | None = None
    and_mask: np.ndarray | None = None  # uint64 [words]; None: pool the integers instead
    scores_args: tuple[Any, ...] | None = None
    u8w: Any = None  # uint8 input: the weight prepared for the byte GEMM (_kernels.U8Weights)
    bw: Any = None  # dense bits layer: the weight with its batch-1 panels (_kernels.BinaryWeights)


def _clip32(values: np.ndarray) -> np.ndarray:
    return np.clip(values, INT32_MIN, INT32_MAX).astype(np.int32)


class Model:
    """A ``.bnn`` model ready to run. Create it with :func:`binarynet.engine.load`.

    Inputs are uint8 ``[N, *input_shape]`` with channels last (NHWC for images with channels;
    ``[N, 28, 28]`` or ``[N, 784]`` for the MNIST MLP: a model whose first layer is dense also
    takes the flattened ``[N, F]``). A non-contiguous array is copied first; any other dtype is
    an error (convert pixels with ``astype(np.uint8)`` only if they are 0..255 integers).
    Batches are processed in chunks so that intermediate values stay near 64 MiB.

    Attributes:
        graph: the validated graph; ``info`` describes it.
        threads: kernel threads (None: the kernels' default); settable.
        kernel: the bgemm/bconv kernel variant (None: the best one for this CPU).
        preprocessor: the :mod:`binarynet.preprocess` object stored in the file (applied to raw
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
        self._backend = Backend(kernel, threads)
        self._stages = self._plan()
        self._chunk_bytes = self._bytes_per_example()

    # -- properties --
    @property
    def threads(self) -> int | None:
        return self._backend.threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self._backend = Backend(self.kernel, value)

    @property
    def kernel(self) -> str | None:
        return self._backend.kernel

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
        ops, values, spec = self.graph.ops, self._values, self.graph.input
        stages = []
        i = 0
        while i < len(ops):
            layer = ops[i]
            if not isinstance(layer, (Dense, Conv2d)):  # validation guarantees the grammar
                raise bnnfile.BNNFileError(f"op {i} ({layer.type}) does not follow a layer")
            j = i + 1
            while isinstance(ops[j], MaxPool2d):
                j += 1
            pools = tuple(ops[i + 1 : j])  # type: ignore[arg-type]
            tail = ops[j]
            x, y = values[i], values[i + 1]
            weight = self._tensors[layer.weight]
            out = weight.shape[0]
            offset = None
            if x.kind == "u8":
                if isinstance(layer, Dense):
                    k = math.prod(x.shape)
                else:
                    k = layer.kernel_size[0] * layer.kernel_size[1] * x.shape[-1]
                # y = Σ (pᵢ − zp)·wᵢ = Σ pᵢwᵢ − zp·Σwᵢ, and Σwᵢ = k − 2·(number of −1s).
                negatives = unpack_bits(weight, k).sum(axis=1, dtype=np.int64)
                offset = (-spec.zero_point * (k - 2 * negatives)).astype(np.int32)
                k_call = k
            elif isinstance(layer, Dense):
                weight = weight.reshape(out, -1)
                k = math.prod(x.shape)
                k_call = 64 * weight.shape[1]
                if k_call != k:
                    offset = np.full(out, k - k_call, dtype=np.int32)
            else:
                k = k_call = x.shape[-1]
            stage = _Stage(i, layer, x, y, pools, tail, weight, k, k_call, offset)  # type: ignore[arg-type]
            if x.kind == "u8":
                stage.u8w = Backend.u8_weights(weight, k)
            elif isinstance(layer, Dense):
                stage.bw = Backend.binary_weights(weight, k_call)
            if isinstance(tail, Threshold):
                stage.lo, stage.hi = self._tensors[tail.lo], self._tensors[tail.hi]
                shift = 0 if offset is None else offset.astype(np.int64)
                stage.lo_call = _clip32(stage.lo.astype(np.int64) - shift)
                stage.hi_call = _clip32(stage.hi.astype(np.int64) - shift)
                stage.and_mask = _and_mask(stage.lo, stage.hi, y.bound)
            else:
                bias = self._tensors[tail.bias] if tail.bias is not None else None
                stage.scores_args = (
                    tail.input_scale,
                    bias,
                    self._tensors[tail.scale],
                    self._tensors[tail.shift],
                )
            stages.append(stage)
            i = j + 1
        return stages

    def _bytes_per_example(self) -> int:
        largest = max(v.nbytes for v in self._values)
        for stage in self._stages:
            if stage.x.kind == "u8" and isinstance(stage.layer, Conv2d):
                ho, wo, _ = stage.y.shape
                largest = max(largest, ho * wo * stage.k)  # the im2col patches
        return 3 * largest  # a value, its successor and temporaries

    # -- running --
    def _layer(self, s: _Stage, v: np.ndarray) -> np.ndarray:
        """The integers y of stage ``s``'s layer (exact, unfused), [B, *y.shape]."""
        be = self._backend
        b = v.shape[0]
        layer = s.layer
        if isinstance(layer, Dense):
            if s.x.kind == "u8":
                raw = be.u8gemm(np.ascontiguousarray(v.reshape(b, -1)), s.u8w)
            else:
                raw = be.bgemm(np.ascontiguousarray(v.reshape(b, -1)), s.bw, s.k_call)
        elif s.x.kind == "u8":
            zp = self.graph.input.zero_point
            raw = be.u8conv2d(v, s.u8w, layer.kernel_size, layer.stride, layer.padding, zp)
        else:
            raw = be.bconv2d(v, s.weight, s.k, layer.stride, layer.padding)
        raw = np.asarray(raw)
        if s.offset is not None:
            raw += s.offset
        return raw

    def _finish(self, s: _Stage, y: np.ndarray) -> np.ndarray:
        """Pools, then threshold or scores, on the integers y."""
        for pool in s.pools:
            y = np.asarray(self._backend.maxpool2d_int32(y, pool.kernel_size, pool.stride))
        if s.scores_args is not None:
            return affine_eval(y, *s.scores_args)
        return threshold_bits(y, s.lo, s.hi)

    def _stage_fast(self, s: _Stage, v: np.ndarray) -> np.ndarray:
        be = self._backend
        layer = s.layer
        if s.scores_args is not None:
            return self._finish(s, self._layer(s, v))
        if isinstance(layer, Dense):  # (a dense layer's pools are rejected by validation)
            a = np.ascontiguousarray(v.reshape(v.shape[0], -1))
            if s.x.kind == "u8":
                return be.u8gemm_threshold(a, s.u8w, s.lo_call, s.hi_call)
            return be.bgemm_threshold(a, s.bw, s.k_call, s.lo_call, s.hi_call)
        if s.pools and s.and_mask is None:
            return self._finish(s, self._layer(s, v))
        if s.x.kind == "u8":
            zp = self.graph.input.zero_point
            out = be.u8conv2d_threshold(
                v, s.u8w, layer.kernel_size, layer.stride, layer.padding, zp, s.lo_call, s.hi_call
            )
        else:
            out = be.bconv2d_threshold(v, s.weight, s.k, layer.stride, layer.padding, s.lo, s.hi)
        for pool in s.pools:
            out = be.maxpool2d_bits(out, pool.kernel_size, pool.stride, s.and_mask)
        return out

    def _run(self, x: np.ndarray, collect: list[list[np.ndarray]] | None) -> np.ndarray:
        v = x
        for n, s in enumerate(self._stages):
            if collect is None:
                v = self._stage_fast(s, v)
            else:
                y = self._layer(s, v)
                collect[n].append(y)
                v = self._finish(s, y)
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
        if isinstance(self._stages[0].layer, Dense) and len(spec.shape) > 1:
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
    """Packed per-channel pooling rule for thresholded bits (bit 1: AND, 0: OR), or None when
    some channel's interval is neither an up-set nor a down-set on [−bound, bound]."""
    lo64, hi64 = lo.astype(np.int64), hi.astype(np.int64)
    constant = (
        (lo64 > hi64) | (lo64 > bound) | (hi64 < -bound) | ((lo64 <= -bound) & (hi64 >= bound))
    )
    up = hi64 >= bound
    down = lo64 <= -bound
    if not np.all(constant | up | down):
        return None
    return bnnfile.pack_bits(~(down & ~up))  # AND for up-sets and constants, OR for down-sets


def load(
    path: str | os.PathLike[str], *, threads: int | None = None, kernel: str | None = None
) -> Model:
    """Load and validate a ``.bnn`` file (see :mod:`binarynet.bnnfile`).

    Args:
        path: the model file.
        threads: kernel threads (None: the kernels' default); also settable as ``model.threads``.
        kernel: force a bgemm/bconv kernel variant, one of
            ``binarynet._kernels.available_kernels()`` (tests use it); None picks the best.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        binarynet.bnnfile.BNNFileError: the file is malformed, corrupt or unsupported (the
            message says what is wrong); a ``ValueError``.
    """
    return Model(bnnfile.load(path), kernel=kernel, threads=threads, path=path)
