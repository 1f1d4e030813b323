"""The self-check of every export: the torch model against the graph it was exported to.

Before anything is written, :func:`self_check` runs the torch model (evaluation mode, no
gradients) and the exported graph on the reference interpreter of the format
(:func:`binarynet.graph.reference.reference`: NumPy, torch-free, independent of the op classes,
the engine and the exporter's maths) on the same probe inputs, and refuses the export with one
line if any class or any bit of any score differs. It is the safety net for every pattern of
:mod:`binarynet.export.patterns`: a pattern that folds a model into the wrong ops is caught
here, not on a device.

Probes (:func:`probe_inputs`): uniform random uint8 images of the model's input shape (seeded,
so an export is reproducible) and the four border images 0, 127, 128 and 255 everywhere (the
zero point 128 and its neighbours make exact ties likely).

Cost: one torch forward and one reference run on the probes. Measured with 260 probes on one
thread of a 2-vCPU AMD EPYC (Zen 4), ``benchmarks/export_selfcheck.py``: the MNIST MLP
784-4096×3-10 takes 1.6 CPU seconds (torch 0.4, reference 1.2), the paper's CIFAR-10 ConvNet
19 CPU seconds (torch 4.5, reference 16). ``export(..., self_check=False)`` skips it (for
models where that cost matters); ``probes=`` sets the number of random probes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from binarynet.export.folding import ExportError
from binarynet.graph import bnnfile
from binarynet.graph.graph import Graph
from binarynet.graph.reference import reference

__all__ = ["BORDER_VALUES", "DEFAULT_PROBES", "probe_inputs", "self_check"]

DEFAULT_PROBES = 256
"""Random probe inputs per export (the four border images come on top)."""

BORDER_VALUES = (0, 127, 128, 255)

_BATCH = 130  # probes per torch forward and reference run: bounds the memory of a big model


def probe_inputs(input_shape: tuple[int, ...], n: int, seed: int = 0) -> np.ndarray:
    """uint8 [len(BORDER_VALUES) + n, *input_shape] (torch layout): the border images, then ``n``
    uniform random images."""
    rng = np.random.default_rng(seed)
    borders = np.stack([np.full(input_shape, v, dtype=np.uint8) for v in BORDER_VALUES])
    random = rng.integers(0, 256, (n, *input_shape), dtype=np.uint8)
    return np.concatenate([borders, random])


def _engine_layout(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def self_check(
    model: nn.Module,
    graph: Graph,
    tensors: Mapping[str, np.ndarray],
    input_shape: tuple[int, ...],
    probes: int = DEFAULT_PROBES,
) -> int:
    """Compare ``model`` and its exported ``graph`` on the probe inputs; returns how many were
    compared. Raises :class:`~binarynet.export.folding.ExportError` (one line) on the first
    difference in a class or a score's bits."""
    x = probe_inputs(input_shape, probes)
    graph_json = bnnfile.graph_to_json(graph)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for start in range(0, len(x), _BATCH):
            batch = x[start : start + _BATCH]
            with torch.no_grad():
                out = model(torch.from_numpy(batch))
            if not isinstance(out, torch.Tensor) or out.dtype != torch.float32:
                raise ExportError("export: self-check: the model does not return float32 scores")
            expected = out.detach().cpu().numpy()
            got, _ = reference(graph_json, tensors, _engine_layout(batch))
            _compare(expected, got, start)
    finally:
        for module, training in modes:
            module.training = training
    return len(x)


def _compare(expected: np.ndarray, got: np.ndarray, start: int) -> None:
    if expected.shape != got.shape:
        raise ExportError(
            f"export: self-check failed: the torch model gives scores of shape "
            f"{list(expected.shape)}, the exported graph {list(got.shape)}; nothing was written"
        )
    differ = np.flatnonzero(
        (expected.view(np.uint32) != got.view(np.uint32)).any(axis=1)
        | (expected.argmax(1) != got.argmax(1))
    )
    if differ.size:
        i = int(differ[0])
        c = int(np.flatnonzero(expected[i].view(np.uint32) != got[i].view(np.uint32))[0])
        what = "border" if start + i < len(BORDER_VALUES) else "random"
        raise ExportError(
            f"export: self-check failed: the exported graph's scores differ from the torch "
            f"model's on {differ.size} of the probe inputs (first: {what} probe {start + i}, "
            f"class {c}: torch {expected[i, c]!r}, graph {got[i, c]!r}); nothing was written. "
            "The exporter mapped this model to the wrong ops: please report it with the model"
        )
