"""Torch → graph: a trained model's eval-mode computation as the ops of :mod:`binarynet.graph`.
The only package that imports both worlds: :mod:`binarynet.training` (torch) and the graph.
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
