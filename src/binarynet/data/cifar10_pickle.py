"""The standard python version of CIFAR-10 (``cifar-10-batches-py``): six pickled batches, read
with an unpickler that accepts only what a batch contains.

Each batch is a pickled dict with ``b'data'``, a ``uint8 [10000, 3072]`` array whose rows are
one image in channel-major order (1024 red, 1024 green, then 1024 blue values, each a 32×32
image in row-major order), and ``b'labels'``, a list of 10 000 ints in 0..9. The pixels come
back exactly, transposed to ``[N, 32, 32, 3]``.

Pickle can run code when it loads a file: :class:`_BatchUnpickler` resolves only the globals a
CIFAR-10 batch needs (NumPy's array and scalar constructors, ``_codecs.encode`` for protocol-2
bytes); any other global stops the load with a ``ValueError``.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from binarynet.data.checks import check_labels
from binarynet.data.cifar10_layout import CIFAR10_BATCHES, CLASS_COUNT, IMAGE_SHAPE

__all__ = ["read_batches"]

_NDARRAY_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's _reconstruct, wherever it lives
_NUMPY_SCALAR = np.float64(0).__reduce__()[0]  # numpy's scalar(), wherever it lives
_NDARRAY_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]  # how pickle protocol 5 stores arrays
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _NDARRAY_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NDARRAY_RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _NUMPY_SCALAR,
    ("numpy._core.multiarray", "scalar"): _NUMPY_SCALAR,
    ("numpy.core.numeric", "_frombuffer"): _NDARRAY_FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _NDARRAY_FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how protocol 2 stores bytes
}


class _ForbiddenGlobalError(pickle.UnpicklingError):
    """The pickle refers to an object that a CIFAR-10 batch never contains."""


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler for CIFAR-10 batches: plain containers and NumPy arrays, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobalError(
                f"it refers to {module}.{name}, which a CIFAR-10 batch never contains (only "
                "NumPy arrays, lists, dicts, bytes and numbers); refusing to load it"
            ) from None


def read_batches(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the five training batches and the test batch of ``root``."""
    parts = [_read_batch(root / name) for name in CIFAR10_BATCHES[:5]]
    train = (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]))
    return {"train": train, "test": _read_batch(root / CIFAR10_BATCHES[5])}


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickled batch: ``(uint8 [N, 32, 32, 3], int64 [N])``."""
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except _ForbiddenGlobalError as e:
        raise ValueError(f"{path}: not a CIFAR-10 batch: {e}") from e
    except OSError:
        raise
    except Exception as e:  # a damaged pickle raises many kinds of errors
        raise ValueError(f"{path}: not a readable CIFAR-10 batch (corrupt pickle: {e!r})") from e
    if not isinstance(batch, dict):
        raise ValueError(
            f"{path}: expected a pickled dict with keys b'data' and b'labels', got "
            f"{type(batch).__name__}"
        )
    data, labels = (_batch_entry(batch, key, path) for key in ("data", "labels"))
    n_pixels = int(np.prod(IMAGE_SHAPE))
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2) or (
        data.shape[1] != n_pixels
    ):
        got = (
            f"{data.dtype} array of shape {list(data.shape)}"
            if isinstance(data, np.ndarray)
            else (type(data).__name__)
        )
        raise ValueError(
            f"{path}: b'data' must be a uint8 array [N, {n_pixels}] (one 3×32×32 image per row, "
            f"channel-major), got {got}"
        )
    try:
        label_array = np.asarray(labels)
    except ValueError as e:
        raise ValueError(f"{path}: b'labels' is not a list of ints ({e})") from e
    label_array = check_labels(label_array, f"{path} b'labels'", CLASS_COUNT)
    if len(label_array) != len(data):
        raise ValueError(
            f"{path}: b'data' holds {len(data)} images but b'labels' has {len(label_array)} labels"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), label_array


def _batch_entry(batch: dict, key: str, path: Path) -> Any:
    """``batch[b'key']`` (or ``batch['key']``), with an error listing the keys found."""
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    found = ", ".join(repr(k) for k in list(batch)[:10])
    raise ValueError(f"{path}: the batch has no b'{key}' entry (keys found: {found})")
