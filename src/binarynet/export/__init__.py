"""Torch → graph: a trained model's eval-mode computation as the ops of :mod:`binarynet.graph`.
The only package that imports both worlds: :mod:`binarynet.training` (torch) and the graph.

:mod:`~binarynet.export.exporter` (the entry points) runs :mod:`~binarynet.export.capture`
(``torch.export``), :mod:`~binarynet.export.patterns` (ATen ops → graph ops, with
:mod:`~binarynet.export.folding`: batch norm + sign → thresholds) and
:mod:`~binarynet.export.selfcheck` (torch against the graph, before anything is written).
"""

from binarynet.export.exporter import (
    ExportError,
    build_graph,
    checkpoint_graph,
    export,
    export_checkpoint,
    threshold_interval,
)

__all__ = [
    "ExportError",
    "build_graph",
    "checkpoint_graph",
    "export",
    "export_checkpoint",
    "threshold_interval",
]
