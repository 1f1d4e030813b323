"""From a model file to ``NAME.h`` + ``NAME.c`` in a directory (``binarynet export --format c``)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import BinaryIO

from binarynet import atomic, filekind
from binarynet.backends.c.emit import CSource, emit_c
from binarynet.graph import bnnfile

__all__ = ["export_c", "read_model"]


def read_model(path: str | os.PathLike[str]) -> bnnfile.BNNFile:
    """A validated model from a ``.bnn`` file, or from a ``binarynet train`` checkpoint (exported
    in memory; this needs torch, the training extras)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"model {path} is a directory; expected a .bnn file or a checkpoint")
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path}")
    if filekind.sniff(path) == filekind.CHECKPOINT:
        from binarynet.export import checkpoint_graph

        graph, tensors = checkpoint_graph(path)
        return bnnfile.validate(graph, tensors, str(path))
    return bnnfile.load(path)


def _write(data: bytes, f: BinaryIO) -> None:
    f.write(data)


def export_c(
    model: str | os.PathLike[str] | bnnfile.BNNFile,
    out_dir: str | os.PathLike[str],
    name: str | None = None,
) -> tuple[CSource, list[Path]]:
    """Write ``NAME.h`` and ``NAME.c`` of ``model`` (a ``.bnn`` path, a checkpoint path or a
    loaded :class:`~binarynet.graph.bnnfile.BNNFile`) into ``out_dir`` (created if missing; existing
    files of the same names are replaced, each atomically). Returns the source and the paths.

    Raises:
        CSourceError: a bad ``name`` or a model the C back-end refuses (GCN + ZCA).
        NotADirectoryError: ``out_dir`` (or a parent) is a file.
        ValueError: ``out_dir`` ends in ``.c``, ``.h``, ``.bnn`` or ``.onnx`` (a file name).
    """
    bnn = model if isinstance(model, bnnfile.BNNFile) else read_model(model)
    source = emit_c(bnn, name)  # everything is generated before anything is written
    out = Path(out_dir)
    if out.suffix in (".c", ".h", ".bnn", ".onnx"):
        raise ValueError(
            f"{out} looks like a file name: the C export writes NAME.h and NAME.c into a "
            "directory; give the directory (and --name NAME)"
        )
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(f"output directory {out}: {parent} is a file, not a directory")
    paths = []
    for file_name, text in source.files.items():
        path = out / file_name
        atomic.atomic_write_bytes(path, functools.partial(_write, text.encode("utf-8")))
        paths.append(path)
    return source, paths
