"""A model file of either kind → a validated graph → the files of a deployment target.

The one loader every command uses: :func:`read_model` takes a ``.bnn`` model or a ``binarynet
train`` checkpoint (exported in memory through :mod:`binarynet.export`, which needs torch: the
training extras); :func:`export_c` and :func:`export_qonnx` take either kind and write a
target's files. Importing this module imports no torch; reading a ``.bnn`` never does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from binarynet import atomic, filekind
from binarynet.graph import bnnfile

if TYPE_CHECKING:
    from binarynet.backends.c import CSource

__all__ = ["export_c", "export_qonnx", "read_model"]

ModelFile = str | os.PathLike[str]


def read_model(path: ModelFile) -> bnnfile.BNNFile:
    """The validated model of a ``.bnn`` file or of a training checkpoint (exported in memory).

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: a directory; :class:`~binarynet.graph.bnnfile.BNNFileError` for a damaged
            ``.bnn``; the exporter's one-line reason for a checkpoint it cannot export.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"model {path} is a directory; expected a .bnn file or a checkpoint")
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path}")
    if filekind.model_kind(path) == filekind.CHECKPOINT:
        from binarynet.export import checkpoint_graph

        graph, tensors = checkpoint_graph(path)
        return bnnfile.validate(graph, tensors, str(path))
    return bnnfile.load(path)


def _model(model: ModelFile | bnnfile.BNNFile) -> bnnfile.BNNFile:
    return model if isinstance(model, bnnfile.BNNFile) else read_model(model)


def export_c(
    model: ModelFile | bnnfile.BNNFile, out_dir: ModelFile, name: str | None = None
) -> tuple[CSource, list[Path]]:
    """``NAME.h`` and ``NAME.c`` of ``model`` (a model file of either kind, or a loaded
    :class:`~binarynet.graph.bnnfile.BNNFile`) in ``out_dir``:
    :func:`binarynet.backends.c.write_c`."""
    from binarynet.backends.c import write_c

    atomic.check_target(out_dir, directory=True)  # before a checkpoint is exported
    return write_c(_model(model), out_dir, name)


def export_qonnx(model: ModelFile | bnnfile.BNNFile, out: ModelFile, **options: Any) -> Any:
    """The QONNX file of ``model`` (either kind) at ``out``; returns the ``onnx.ModelProto``.
    ``options``: those of :func:`binarynet.backends.qonnx.write_qonnx`."""
    from binarynet.backends.qonnx import write_qonnx

    atomic.check_target(out)  # before a checkpoint is exported
    return write_qonnx(_model(model), out, **options)
