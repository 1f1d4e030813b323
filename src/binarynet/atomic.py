"""Atomic file writes: a process killed at any instant leaves either the old file or the new one.

The content goes to a temporary file in the target's directory, is flushed and fsync'ed, then
renamed over the target with :func:`os.replace` (atomic on POSIX), and the directory is fsync'ed
so that the rename itself is durable. Used for checkpoints, metrics and ``.bnn`` files. NumPy-
and torch-free.

The new file gets the permissions an ordinary ``open(path, "w")`` would give it: 0o666 less the
process's umask (the temporary file is created 0o600 by :func:`tempfile.mkstemp`, which would
otherwise leave exported models readable by their owner only).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write_bytes"]


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem allows opening a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """The process's file-mode creation mask, read without changing it where the OS allows
    (Linux: /proc/self/status); elsewhere set and restored at once."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Create ``path`` atomically: ``write(file_object)`` fills a temporary file that replaces
    ``path`` only once it is complete and on disk."""
    path = Path(path)
    if path.is_dir():  # os.replace would fail only after the whole content was written
        raise IsADirectoryError(errno.EISDIR, "is a directory, expected a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
