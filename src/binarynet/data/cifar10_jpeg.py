"""The JPEG copy of CIFAR-10: ``index.csv`` and the images it lists, read from
:data:`~binarynet.data.cifar10_layout.CIFAR10_JPEG_ARCHIVE` member by member (never extracted)
or from the extracted ``train/`` and ``test/`` folders, and decoded with Pillow.

``index.csv`` has the header ``split,index,label,path`` and one row per image: ``split`` is
``train`` or ``test``, ``index`` its position 0..N − 1 in that split (the training rows in the
original CIFAR-10 order), ``label`` its class 0..9 and ``path`` a relative path such as
``train/frog/0000.jpg``. Every field is checked (the message gives the line), paths may not
leave the data folder, and a member larger than any 32×32 JPEG is refused before it is read.

Each image is decoded with Pillow ``convert('RGB')``; the full copy decodes to the arrays whose
MD5s are :data:`CIFAR10_JPEG_MD5`, and a decoder giving other pixels is reported with a
:class:`~binarynet.data.checks.ChecksumWarning`. Decoding all 60 000 images takes about 10 s on
one core, so the decoded arrays can be kept in a cache (:mod:`binarynet.data.cifar10_cache`).
"""

from __future__ import annotations

import csv
import io
import tarfile
import warnings
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from binarynet.data.checks import ChecksumWarning
from binarynet.data.cifar10_cache import load_cached_images, save_cached_images
from binarynet.data.cifar10_layout import (
    CIFAR10_JPEG_ARCHIVE,
    CLASS_COUNT,
    EXPECTED_LAYOUTS,
    IMAGE_SHAPE,
    INDEX_NAME,
    OFFICIAL_SIZE,
)
from binarynet.data.files import array_md5, file_md5

__all__ = ["CIFAR10_JPEG_MD5", "read_jpeg_copy"]

CIFAR10_JPEG_MD5: dict[str, str] = {
    "train": "7c618da940c26da995ad1feaa1bac54c",
    "test": "a085fc7e64a3745bfb901013e5654098",
}
"""MD5 (:func:`~binarynet.data.files.array_md5`) of the JPEG copy decoded with Pillow
``convert('RGB')`` in index order: ``uint8 [50000, 32, 32, 3]`` training and
``[10000, 32, 32, 3]`` test images."""

_INDEX_HEADER = ["split", "index", "label", "path"]
_MAX_JPEG_BYTES = 1 << 16  # a 32×32 JPEG is 1–2 kB; refuse members that cannot be one


def read_jpeg_copy(root: Path, cache_dir: Path | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read ``index.csv`` and the images it lists (from the cache when it is valid)."""
    index_path = root / INDEX_NAME
    index = _read_index(index_path)
    archive = root / CIFAR10_JPEG_ARCHIVE
    if archive.is_file():
        source = {
            "index_md5": file_md5(index_path),
            "archive_md5": file_md5(archive),
            "archive_bytes": archive.stat().st_size,
        }
    elif any((root / split).is_dir() for split in index):
        source = {"index_md5": file_md5(index_path), "tree": str(root.resolve())}
    else:
        raise FileNotFoundError(
            f"CIFAR-10 JPEG images missing in {root}: found {INDEX_NAME} but neither "
            f"{CIFAR10_JPEG_ARCHIVE} nor the extracted {'/, '.join(index)}/ folders. "
            f"{EXPECTED_LAYOUTS}."
        )
    counts = {split: len(labels) for split, (labels, _) in index.items()}
    images = None if cache_dir is None else load_cached_images(cache_dir, source, counts)
    if images is None:
        images = _decode_images(root, archive if archive.is_file() else None, index)
        md5s = {split: array_md5(x) for split, x in images.items()}
        for split, md5 in md5s.items():
            official = counts[split] == OFFICIAL_SIZE[split]
            if official and md5 != CIFAR10_JPEG_MD5[split]:
                warnings.warn(
                    f"{root}: the {split} images decode to MD5 {md5}, not the reference "
                    f"{CIFAR10_JPEG_MD5[split]} (Pillow convert('RGB')): another JPEG decoder "
                    "or a modified copy; pixels (and accuracies) may differ slightly",
                    ChecksumWarning,
                    stacklevel=3,
                )
        if cache_dir is not None:
            save_cached_images(cache_dir, source, images, md5s)
    return {split: (images[split], labels) for split, (labels, _) in index.items()}


def _read_index(path: Path) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Parse ``index.csv``: ``{split: (int64 labels, relative paths)}`` in index order."""
    rows: dict[str, dict[int, tuple[int, str]]] = {"train": {}, "test": {}}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != _INDEX_HEADER:
                raise ValueError(f"{path}: header {header!r}, expected {','.join(_INDEX_HEADER)}")
            for row in reader:
                _parse_index_row(row, rows, path, reader.line_num)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e})") from e
    except csv.Error as e:
        raise ValueError(f"{path}: malformed CSV ({e})") from e
    index = {}
    for split, entries in rows.items():
        n = len(entries)
        if n == 0:
            raise ValueError(f"{path}: no {split!r} rows; expected the training and test images")
        if max(entries) != n - 1:  # the indices are distinct, so they are 0..n-1 iff max = n-1
            gap = min(set(range(n)) - entries.keys())
            raise ValueError(
                f"{path}: the {split!r} indices are not 0..{n - 1}: index {gap} is missing "
                f"(largest index {max(entries)})"
            )
        labels = np.array([entries[i][0] for i in range(n)], dtype=np.int64)
        index[split] = (labels, [entries[i][1] for i in range(n)])
    return index


def _parse_index_row(
    row: list[str], rows: dict[str, dict[int, tuple[int, str]]], path: Path, line: int
) -> None:
    """Check one ``split,index,label,path`` row of ``index.csv`` and add it to ``rows``."""
    where = f"{path} line {line}"
    if len(row) != 4:
        raise ValueError(f"{where}: expected 4 fields split,index,label,path, got {row!r}")
    split, index, label, member = row
    if split not in rows:
        raise ValueError(f"{where}: split {split!r}, expected 'train' or 'test'")
    try:
        i, y = int(index), int(label)
    except ValueError:
        raise ValueError(
            f"{where}: index and label must be integers, got {index!r} and {label!r}"
        ) from None
    if i < 0:
        raise ValueError(f"{where}: negative index {i}")
    if not 0 <= y < CLASS_COUNT:
        raise ValueError(f"{where}: label {y} out of range, expected 0..{CLASS_COUNT - 1}")
    if i in rows[split]:
        raise ValueError(f"{where}: duplicate {split} index {i}")
    rows[split][i] = (y, _relative_member(member, where))


def _relative_member(member: str, where: str) -> str:
    """``member`` as a normalised relative POSIX path; refuses absolute paths and ``..``."""
    pure = PurePosixPath(member)
    if not member or pure.is_absolute() or ".." in pure.parts or "\\" in member:
        raise ValueError(
            f"{where}: path {member!r} must be a relative path inside the data folder "
            "(like train/frog/0000.jpg)"
        )
    return pure.as_posix()


def _decode_images(
    root: Path, archive: Path | None, index: dict[str, tuple[np.ndarray, list[str]]]
) -> dict[str, np.ndarray]:
    """Decode every image of ``index`` in index order, from ``archive`` or from ``root``."""
    wanted = {member for _, members in index.values() for member in members}
    if archive is not None:
        blobs = _read_tar_members(archive, wanted)
        where = f"{archive}: member "
    else:
        blobs = {member: _read_small_file(root / member) for member in sorted(wanted)}
        where = f"{root}/"
    images = {}
    for split, (_, members) in index.items():
        out = np.empty((len(members), *IMAGE_SHAPE), dtype=np.uint8)
        for i, member in enumerate(members):
            out[i] = _decode_jpeg(blobs[member], f"{where}{member}", IMAGE_SHAPE)
        images[split] = out
    return images


def _read_tar_members(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    """The bytes of each regular-file member of ``archive`` named in ``wanted``, read in one
    sequential pass (no extraction to disk)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = PurePosixPath(member.name).as_posix()
                if name not in wanted or not member.isfile():
                    continue
                if member.size > _MAX_JPEG_BYTES:
                    raise ValueError(
                        f"{archive}: member {member.name} is {member.size} bytes, too large for "
                        f"a 32×32 JPEG (at most {_MAX_JPEG_BYTES})"
                    )
                f = tar.extractfile(member)
                assert f is not None  # a regular file always has a file object
                found[name] = f.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise ValueError(f"{archive}: cannot read the archive ({e})") from e
    missing = sorted(wanted - found.keys())
    if missing:
        raise ValueError(
            f"{archive} lacks {len(missing)} of the images listed in {INDEX_NAME} "
            f"(e.g. {', '.join(missing[:3])}); is it the archive that goes with this index?"
        )
    return found


def _read_small_file(path: Path) -> bytes:
    """The bytes of an image file of the extracted tree (at most :data:`_MAX_JPEG_BYTES`)."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 image listed in {INDEX_NAME} not found: {path}")
    size = path.stat().st_size
    if size > _MAX_JPEG_BYTES:
        raise ValueError(f"{path}: {size} bytes, too large for a 32×32 JPEG")
    return path.read_bytes()


def _decode_jpeg(data: bytes, where: str, shape: tuple[int, int, int]) -> np.ndarray:
    """Decode one JPEG to ``uint8 [H, W, 3]`` with Pillow ``convert('RGB')``, checking its size."""
    image_module = _pillow()
    height, width, _ = shape
    try:
        with image_module.open(io.BytesIO(data)) as image:
            fmt, size = image.format, image.size
            if fmt == "JPEG" and size == (width, height):
                return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, image_module.DecompressionBombError) as e:
        # OSError includes PIL.UnidentifiedImageError and truncated data; a damaged frame
        # header can claim a size that Pillow refuses to open (DecompressionBombError).
        raise ValueError(f"{where}: cannot decode the JPEG ({e})") from e
    if fmt != "JPEG":
        raise ValueError(f"{where}: not a JPEG (Pillow reads it as {fmt})")
    w, h = size
    raise ValueError(f"{where}: image is {w}×{h} pixels, expected {width}×{height}")


def _pillow() -> Any:
    """``PIL.Image``, or an ImportError saying how to install it."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(
            "decoding the JPEG copy of CIFAR-10 needs Pillow: pip install pillow"
        ) from e
    return Image
