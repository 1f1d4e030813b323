"""The cache of the decoded JPEG copy of CIFAR-10: the images as ``.npy`` files, and a JSON
record of what they were decoded from and what they hold.

In the cache folder::

    cifar10-jpeg-train.npy   uint8 [N_train, 32, 32, 3]
    cifar10-jpeg-test.npy    uint8 [N_test, 32, 32, 3]
    cifar10-jpeg.json        {"format": ..., "source": {...}, "arrays": {split: shape, dtype, md5}}

``source`` identifies the files the images came from (the MD5s of ``index.csv`` and the archive,
or ``index.csv`` and the extracted folder's path). A cache made from other files is replaced
silently; one that fails its checks (format, shape, MD5) is replaced with a
:class:`~binarynet.data.checks.ChecksumWarning`. Each file is written atomically
(:func:`binarynet.atomic.atomic_write_bytes`), the record last: a load interrupted while writing
leaves each file whole (old or new), and a mix of old and new fails the checks above.
"""

from __future__ import annotations

import json
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from binarynet.atomic import atomic_write_bytes
from binarynet.data.checks import ChecksumWarning
from binarynet.data.cifar10_layout import IMAGE_SHAPE
from binarynet.data.files import array_md5

__all__ = ["load_cached_images", "save_cached_images"]

_CACHE_FORMAT = "binarynet-cifar10-jpeg-cache-1"


def _cache_paths(cache_dir: Path) -> tuple[Path, dict[str, Path]]:
    """(metadata file, {split: .npy file}) of the decoded-image cache in ``cache_dir``."""
    return cache_dir / "cifar10-jpeg.json", {
        split: cache_dir / f"cifar10-jpeg-{split}.npy" for split in ("train", "test")
    }


def load_cached_images(
    cache_dir: Path, source: dict[str, Any], counts: dict[str, int]
) -> dict[str, np.ndarray] | None:
    """The cached images if the cache is for ``source`` and passes its checks, else None."""
    meta_path, npy_paths = _cache_paths(cache_dir)
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != _CACHE_FORMAT:
        warnings.warn(
            f"{meta_path}: not a cache of this version; rebuilding it",
            ChecksumWarning,
            stacklevel=4,
        )
        return None
    if meta.get("source") != source:
        return None  # made from other files: rebuild silently
    images = {}
    for split, path in npy_paths.items():
        want_shape = [counts[split], *IMAGE_SHAPE]
        want = meta.get("arrays", {}).get(split, {})
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            problem = f"unreadable ({e})"
        else:
            if array.dtype != np.uint8 or list(array.shape) != want_shape:
                problem = f"{array.dtype} {list(array.shape)}, expected uint8 {want_shape}"
            elif array_md5(array) != want.get("md5"):
                problem = f"MD5 {array_md5(array)}, expected {want.get('md5')}"
            else:
                images[split] = array
                continue
        warnings.warn(
            f"{path}: cached images are {problem}; decoding the JPEGs again",
            ChecksumWarning,
            stacklevel=4,
        )
        return None
    return images


def save_cached_images(
    cache_dir: Path, source: dict[str, Any], images: dict[str, np.ndarray], md5s: dict[str, str]
) -> None:
    """Write the decoded images and their metadata to ``cache_dir`` (each file atomically)."""
    meta_path, npy_paths = _cache_paths(cache_dir)
    meta = {
        "format": _CACHE_FORMAT,
        "source": source,
        "arrays": {
            split: {"shape": list(x.shape), "dtype": "uint8", "md5": md5s[split]}
            for split, x in images.items()
        },
    }
    try:
        for split, path in npy_paths.items():
            atomic_write_bytes(path, partial(np.save, arr=images[split], allow_pickle=False))
        text = json.dumps(meta, indent=2) + "\n"
        atomic_write_bytes(meta_path, lambda f: f.write(text.encode()))
    except OSError as e:
        warnings.warn(
            f"cannot write the CIFAR-10 cache in {cache_dir} ({e}); continuing without",
            stacklevel=4,
        )
