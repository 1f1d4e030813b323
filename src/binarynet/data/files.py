"""Finding a dataset's files on disk, downloading the missing ones, and the MD5 checksums that
identify files and arrays.

:func:`locate_files` and :func:`download_files` serve datasets published as a few ``.gz`` files
(MNIST today); pooch is imported only when something must be downloaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["array_md5", "download_files", "file_md5", "locate_files"]

_CHUNK = 1 << 20  # hash files in 1 MiB pieces


def array_md5(a: np.ndarray) -> str:
    """MD5 (hex) of the array's bytes in C order. Shape and dtype are not part of the hash."""
    return hashlib.md5(np.ascontiguousarray(a).tobytes()).hexdigest()


def file_md5(path: Path) -> str:
    """MD5 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def locate_files(directory: Path, names: list[str], dataset: str, url: str) -> dict[str, Path]:
    """Find each of ``names`` (``*.gz`` file names) in ``directory``, gzipped or not.

    For a name ``x.gz`` this accepts ``x.gz`` or ``x`` (preferring ``x.gz``).

    Returns:
        ``{name: path}`` for every name.

    Raises:
        FileNotFoundError: the directory or some files are missing; the message lists the
            missing files once and says how to download them (``download=True`` in Python,
            ``--download`` on the command line).
    """
    hint = f"Fetch them from {url} with download=True (binarynet train/eval --download)"
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{dataset} directory not found: {directory}. Expected it to hold "
            f"{_describe(names)}. {hint}."
        )
    found = {name: _find_one(directory, name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        nested = directory / dataset.lower()
        also = f" (there is a subdirectory {nested}: did you mean it?)" if nested.is_dir() else ""
        raise FileNotFoundError(
            f"{dataset} files missing in {directory}{also}: {_describe(missing)} "
            f"({len(missing)} of {len(names)}). {hint}."
        )
    return {name: path for name, path in found.items() if path is not None}


def _find_one(directory: Path, name: str) -> Path | None:
    """``directory/name`` if it exists, else ``directory/name`` without ``.gz``, else None."""
    for candidate in (name, name.removesuffix(".gz")):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def _describe(names: list[str]) -> str:
    """``a(.gz), b(.gz)`` — the accepted spellings of each name."""
    return ", ".join(f"{n.removesuffix('.gz')}(.gz)" for n in names)


def download_files(directory: Path, checksums: Mapping[str, str], base_url: str) -> None:
    """Download each file of ``checksums`` (``{name: md5}``) that ``directory`` lacks.

    A file counts as present when it exists gzipped or not (see :func:`locate_files`); a
    present file is not downloaded again nor checked. Downloads go through pooch, which
    verifies the MD5 and deletes a file that does not match.

    Raises:
        ImportError: pooch is not installed.
        ValueError: a downloaded file's MD5 differs from the expected one (message names the
            file, its URL and both checksums).
    """
    todo = [name for name in checksums if _find_one(directory, name) is None]
    if not todo:
        return
    try:
        import pooch
    except ImportError as e:
        raise ImportError(
            "downloading datasets needs pooch: pip install pooch (or binarynet[train])"
        ) from e
    directory.mkdir(parents=True, exist_ok=True)
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    for name in todo:
        url = base_url + name
        try:
            pooch.retrieve(url, f"md5:{checksums[name]}", fname=name, path=directory)
        except ValueError as e:
            raise ValueError(
                f"checksum mismatch for {name} downloaded from {url}: expected MD5 "
                f"{checksums[name]}; the file was deleted. ({e})"
            ) from e
