"""Export: a trained torch model → a ``.bnn`` file that :mod:`binarynet.backends.engine` runs
bit-exactly, or a one-line refusal.

This package is the only one that knows both worlds (torch and the file format of
:mod:`binarynet.graph.bnnfile`). An export has three steps, one module each:

1. :mod:`~binarynet.export.capture`: ``torch.export`` captures the ATen graph of the model's
   evaluation forward, whatever its Python form (Sequential or not, custom ``forward``s, layer
   subclasses, reused blocks, functional calls), and computes every constant in it.
2. :mod:`~binarynet.export.patterns`: the captured ops are matched onto the graph's ops
   (``dense``, ``conv2d``, ``maxpool2d``, ``threshold``, ``scores``); batch norm + sign fold into
   integer thresholds (:mod:`~binarynet.export.folding`); an op with no exact form is refused
   with its name, module and source line.
3. :mod:`~binarynet.export.selfcheck`: the torch model and the exported graph, on the format's
   independent reference interpreter, must agree bit for bit on probe inputs; only then is the
   file written.

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

**Batch norm + sign = an integer interval.** After the layer come float32 steps (an optional
bias, batch norm's ``v * scale + shift``, ...) and the sign; the unit is monotone in y, so it is
+1 exactly on an interval of the integers (:mod:`binarynet.export.folding` derives it).

**Max-pooling before batch norm.** torch pools the values y·input_scale (+ bias); multiplying by
a power of two and adding are non-decreasing, so that is the pool of the integers y. The engine
may pool the integers and then threshold, or threshold first and pool the bits (bit 1 = −1): for
an up-set, max(y) ≥ τ ⇔ some yⱼ ≥ τ ⇔ not every bit is 1, so the pooled bit is the AND of the
bits; for a down-set, max(y) ≤ τ ⇔ every yⱼ ≤ τ ⇔ every bit is 0, so it is the OR; constant
channels give equal bits, so either. Both are exact. **Max-pooling after the sign** (of ±1
values) is the same graph when every channel's threshold is an up-set or a constant: the max of
the signs is the sign of the max; a down-set channel (γ < 0) would need a min, and is refused.

**Flatten** reorders the first dense layer's weight columns to the engine's channels-last
order (:mod:`binarynet.export.patterns`).

**Scores.** The last layer (binary layer → batch norm, no sign) is written as a ``scores`` op:
the engine computes f(y) = fl(fl(fl(fl(y·input_scale) + b)·scale) + shift) in float32 with
NumPy, bit-identical to torch's scores, so the argmax (first index on ties, in both) is
identical.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn

import binarynet
from binarynet.config import DEFAULT_INPUT_SHAPES
from binarynet.export.capture import capture
from binarynet.export.folding import ExportError, threshold_interval
from binarynet.export.patterns import match
from binarynet.export.selfcheck import DEFAULT_PROBES, self_check
from binarynet.graph import bnnfile
from binarynet.graph.graph import PREPROCESS_PREFIX, Graph
from binarynet.graph.ops import Scores
from binarynet.graph.values import InputSpec, affine_eval
from binarynet.training.checkpoint import LoadedCheckpoint, read_checkpoint
from binarynet.training.nn import BinaryConv2d, BinaryLinear, FixedPointInput

__all__ = [
    "ExportError",
    "affine_eval",
    "build_graph",
    "checkpoint_graph",
    "export",
    "export_checkpoint",
    "threshold_interval",
]


def _engine_shape(torch_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-example torch shape → the engine's: (C, H, W) → (H, W, C); others unchanged."""
    if len(torch_shape) == 3:
        c, h, w = torch_shape
        return (h, w, c)
    return torch_shape


def _default_input_shape(model: nn.Module, provenance: dict[str, Any]) -> tuple[int, ...]:
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
    *,
    self_check: bool = True,
    probes: int = DEFAULT_PROBES,
    **provenance: Any,
) -> tuple[Graph, dict[str, np.ndarray]]:
    """The graph and tensors of ``model``, self-checked, without writing a file (see
    :func:`export`)."""
    if not isinstance(model, nn.Module):
        raise ExportError(f"export takes a torch nn.Module, got {type(model).__name__}")
    if not any(isinstance(m, FixedPointInput) for m in model.modules()):
        raise ExportError("the model must start with FixedPointInput (uint8 images in)")
    if input_shape is None:
        input_shape = _default_input_shape(model, provenance)
    input_shape = tuple(int(d) for d in input_shape)
    if not 1 <= len(input_shape) <= 3 or any(d < 1 for d in input_shape):
        raise ExportError(
            f"input_shape must be (F,), (H, W) or (C, H, W) with positive sizes, got {input_shape}"
        )
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
    matched = match(capture(model, input_shape, ExportError))
    spec = InputSpec(_engine_shape(input_shape), matched.zero_point, matched.scale)
    if preprocessor is None:
        preprocessor = getattr(model, "preprocessor", None)  # set by read_checkpoint
    pre_fields, pre_tensors = _preprocess_state(preprocessor)
    scores = matched.ops[-1]
    assert isinstance(scores, Scores)  # match() ends with it
    num_classes = matched.tensors[scores.shift].shape[0]
    graph = Graph(spec, tuple(matched.ops), num_classes, info, pre_fields)
    if self_check:
        _self_check(model, graph, matched.tensors, input_shape, probes)
    return graph, {**matched.tensors, **pre_tensors}


_self_check = self_check  # the parameter of build_graph shadows the function's name


def export(
    model: nn.Module,
    path: str | os.PathLike[str],
    /,
    *,
    input_shape: tuple[int, ...] | None = None,
    preprocessor: Any = None,
    self_check: bool = True,
    probes: int = DEFAULT_PROBES,
    **provenance: Any,
) -> Graph:
    """Write ``model`` (any ``nn.Module`` built from binarynet layers) as a ``.bnn`` file.

    The model is exported as what its evaluation-mode forward computes (dropout off, batch norm
    with running statistics), whatever its current mode; nothing in it is modified. Its ATen
    graph is captured with ``torch.export`` and matched onto the graph's ops
    (``docs/byo-network.md`` lists the patterns); an op with no exact ``.bnn`` form is refused
    with one line naming it, its module and its source line. Before anything is written the
    torch model and the exported graph run on ``4 + probes`` probe inputs (border images and
    random uint8 images) and must agree bit for bit (:mod:`binarynet.export.selfcheck`).

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
        self_check: compare torch and the exported graph before writing (default). Its cost is
            one torch forward and one NumPy reference run on the probes: 1.6 CPU seconds for
            the MNIST MLP 784-4096×3-10 and 19 for the paper's CIFAR-10 ConvNet (one thread of
            a Zen 4 EPYC); ``False`` skips it, for huge models.
        probes: the random probe inputs of the self-check (default 256).
        **provenance: JSON-serialisable facts stored in the file, e.g. ``model="mnist-mlp"``,
            ``model_kwargs={...}``; binarynet's and torch's versions are added.

    Returns:
        The graph written (``graph.ops``, ``graph.input``, ...).

    Raises:
        ExportError: an op with no exact ``.bnn`` form (the message names it and where it came
            from), an invalid argument, or a self-check that found a difference.
    """
    graph, tensors = build_graph(
        model, input_shape, preprocessor, self_check=self_check, probes=probes, **provenance
    )
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
