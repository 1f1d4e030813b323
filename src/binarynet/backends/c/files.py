"""A validated model → ``NAME.h`` + ``NAME.c`` in a directory (``binarynet export --format c``)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import BinaryIO

from binarynet import atomic
from binarynet.backends.c.emit import CSource, emit_c
from binarynet.graph import bnnfile

__all__ = ["write_c"]


def _write(data: bytes, f: BinaryIO) -> None:
    f.write(data)


def write_c(
    model: str | os.PathLike[str] | bnnfile.BNNFile,
    out_dir: str | os.PathLike[str],
    name: str | None = None,
) -> tuple[CSource, list[Path]]:
    """Write ``NAME.h`` and ``NAME.c`` of ``model`` (a ``.bnn`` path or a loaded
    :class:`~binarynet.graph.bnnfile.BNNFile`; :func:`binarynet.deploy.export_c` also takes a
    checkpoint) into ``out_dir`` (created if missing; existing
    files of the same names are replaced, each atomically). Returns the source and the paths.

    Raises:
        CSourceError: a bad ``name`` or a model the C back-end refuses (GCN + ZCA).
        NotADirectoryError: ``out_dir`` (or a parent) is a file.
        ValueError: ``out_dir`` ends in ``.c``, ``.h``, ``.bnn`` or ``.onnx`` (a file name).
    """
    bnn = model if isinstance(model, bnnfile.BNNFile) else bnnfile.load(model)
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
