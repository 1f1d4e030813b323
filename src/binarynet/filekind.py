"""Which kind of binarynet file a path holds, told from its first bytes.

binarynet reads two kinds of model file, easy to mix up:

``checkpoint``
    a training checkpoint (``best.pt`` / ``last.pt`` of ``binarynet train``): a ``torch.save``
    zip archive. ``binarynet export``, ``summary`` and ``train --init-from`` take it.
``bnn``
    a deployable ``.bnn`` model (:mod:`binarynet.graph.bnnfile`): a safetensors file whose metadata
    holds the binarynet graph. ``binarynet eval``, ``summary`` and the engine take it.

:func:`require` checks that a path is not a directory, nor the *other* kind, and otherwise
raises one line that says what the file is and which command takes it, instead of a parser's
error about header lengths or torch's advice to unpickle. A damaged or foreign file is left to
the loader, whose message says precisely what is wrong with it. Needs neither NumPy nor torch.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

__all__ = ["BNN", "CHECKPOINT", "model_kind", "require", "sniff"]

BNN = "bnn"
CHECKPOINT = "checkpoint"

_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format since torch 1.6
_SNIFF_HEADER_BYTES = 1 << 20  # enough of a safetensors header to find the graph's key

_WHAT = {
    BNN: "a .bnn model file (exported for the engine)",
    CHECKPOINT: "a training checkpoint (torch.save, as binarynet train writes best.pt / last.pt)",
}
_TAKEN_BY = {
    BNN: "binarynet eval, binarynet summary and binarynet.backends.engine.load take it",
    CHECKPOINT: "binarynet export turns it into a .bnn model; binarynet summary and "
    "binarynet train --init-from take it too",
}


def sniff(path: str | os.PathLike[str]) -> str:
    """``"bnn"``, ``"checkpoint"``, ``"safetensors"``, ``"empty"`` or ``"other"`` for the file at
    ``path`` (which must be a readable file)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if not head:
            return "empty"
        if head.startswith(_ZIP_MAGIC):
            return CHECKPOINT
        if len(head) < 8:
            return "other"
        (n,) = struct.unpack("<Q", head)
        if n > os.fstat(f.fileno()).st_size - 8:
            return "other"
        header = f.read(min(n, _SNIFF_HEADER_BYTES))
    if not header.startswith(b"{"):
        return "other"
    return BNN if b'"binarynet"' in header else "safetensors"


def model_kind(path: str | os.PathLike[str]) -> str:
    """:data:`BNN` or :data:`CHECKPOINT`: which loader a model file goes to. Its first bytes
    decide when they are either kind's; a damaged or foreign file goes by its suffix
    (``.pt`` / ``.pth``: a checkpoint, else a ``.bnn``), so that its loader says precisely what
    is wrong with it."""
    found = sniff(path)
    if found in (BNN, CHECKPOINT):
        return found
    return CHECKPOINT if Path(path).suffix in (".pt", ".pth") else BNN


def require(path: str | os.PathLike[str], kind: str, what: str) -> Path:
    """``path`` as a Path, unless it is missing, a directory, or the binarynet file of the
    other kind than ``kind`` (:data:`BNN` or :data:`CHECKPOINT`).

    Raises:
        FileNotFoundError: nothing at ``path`` (the message names ``what`` and the path).
        ValueError: a directory, or a binarynet file of the other kind: one line saying what
            it is and which command takes it.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a directory; expected {_WHAT[kind]}")
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    found = sniff(path)
    if found == kind or found not in _TAKEN_BY:
        return path  # the loader checks the rest, with a precise message
    raise ValueError(f"{path} is {_WHAT[found]}, not {_WHAT[kind]}: {_TAKEN_BY[found]}")
