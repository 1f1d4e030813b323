"""Atomic file writes: a process killed at any instant leaves either the old file or the new one.

The content goes to a temporary file in the target's directory, is flushed and fsync'ed, then
renamed over the target with :func:`os.replace` (atomic on POSIX), and the directory is fsync'ed
so that the rename itself is durable. Used for checkpoints, metrics and ``.bnn`` files. NumPy-
and torch-free.

The new file gets the permissions an ordinary ``open(path, "w")`` would give it: 0o666 less the
process's umask (the temporary file is created 0o600 by :func:`tempfile.mkstemp`, which would
otherwise leave exported models readable by their owner only).

Errors name the file the caller asked for: an OSError about the hidden temporary (a read-only
folder, a full disk) is raised again with ``path`` as its file name. :func:`check_target` refuses,
before any work, a target that cannot be created (a path through a file, a directory where a
file is expected); every writer and ``binarynet`` command says it in the same words.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write_bytes", "check_target"]


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


def check_target(path: str | os.PathLike, *, directory: bool = False) -> Path:
    """``path`` as a :class:`~pathlib.Path` if a file (``directory=True``: a directory) can be
    created there; else NotADirectoryError ``"PATH: PARENT is a file, not a directory"`` for a
    path through a file, IsADirectoryError for a file target that is a directory."""
    path = Path(path)
    if directory and path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file, not a directory")
    if not directory and path.is_dir():  # os.replace would fail only after the content
        raise IsADirectoryError(errno.EISDIR, "is a directory, expected a file name", str(path))
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{path}: {parent} is a file, not a directory")
            break
    return path


def atomic_write_bytes(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Create ``path`` atomically: ``write(file_object)`` fills a temporary file that replaces
    ``path`` only once it is complete and on disk."""
    path = check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _about(exc, path) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, tmp):
            raise _about(exc, path) from None
        raise  # not an OSError of this write (the writer's own error about another file, ...)
    _fsync_dir(path.parent)


def _about(exc: OSError, path: Path) -> OSError:
    """``exc`` (about the temporary file, or about no file) as an OSError about ``path``."""
    assert exc.errno is not None
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
