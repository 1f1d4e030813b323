"""Datasets as uint8 arrays: the IDX file format, MNIST, a small MNIST sample shipped inside
the package, CIFAR-10 (the standard pickled batches or a JPEG copy) and SVHN (``.mat`` files).

This module needs only NumPy (pooch too, but only when downloading; Pillow to decode the JPEG
copy of CIFAR-10; SciPy to read SVHN's ``.mat`` files), so the torch-free engine can use it.
Images stay ``uint8`` end to end: the conversion to the first layer's 8-bit fixed-point input,
x = (p − 128)·2⁻⁷, happens inside the model.

Every dataset comes as a :class:`Splits` of three :class:`Split` objects (train, valid, test).
Images are ``[N, H, W]`` for grey-scale data (MNIST: ``[N, 28, 28]``) and ``[N, H, W, C]`` for
colour data; labels are ``int64`` in ``0 .. n_classes − 1``. The helpers below the MNIST
section (:func:`check_images`, :func:`check_labels`, :func:`check_same_count`,
:func:`split_last`, :func:`locate_files`, :func:`download_files`) are meant to be shared by the
loaders of later datasets (CIFAR-10, SVHN).

Example::

    from binarynet.data import load_mnist, mnist_sample

    splits = load_mnist("data/mnist", download=True)   # 50 000 / 10 000 / 10 000
    sample = mnist_sample()                            # 8 000 / 2 000 / 2 000, no download
    cifar = load_cifar10("data/cifar-10-batches-py")   # 45 000 / 5 000 / 10 000, [N, 32, 32, 3]
    svhn = load_svhn("data/svhn", extra=True)          # 598 388 / 6 000 / 26 032

Preprocessing beyond the identity (global contrast normalisation, ZCA whitening, quantisation
back to uint8) lives in :mod:`binarynet.preprocess`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import os
import pickle
import tarfile
import tempfile
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "CIFAR10_BATCHES",
    "CIFAR10_CLASSES",
    "CIFAR10_JPEG_ARCHIVE",
    "CIFAR10_JPEG_MD5",
    "MNIST_FILES",
    "MNIST_URL",
    "SVHN_FILES",
    "SVHN_URL",
    "ChecksumWarning",
    "DatasetSizeWarning",
    "Split",
    "Splits",
    "array_md5",
    "check_images",
    "check_labels",
    "check_same_count",
    "class_balance",
    "download_files",
    "load_cifar10",
    "load_mnist",
    "load_svhn",
    "locate_files",
    "mnist_sample",
    "read_idx",
    "split_last",
    "write_idx",
]

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: ``images[i]`` has class ``labels[i]``.

    Attributes:
        images: ``uint8`` array, ``[N, H, W]`` (grey) or ``[N, H, W, C]`` (colour).
        labels: ``int64`` array ``[N]`` with values in ``0 .. n_classes − 1``.
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.labels.ndim != 1 or len(self.images) != len(self.labels):
            raise ValueError(
                f"a Split needs images [N, ...] and labels [N]; got images of shape "
                f"{self.images.shape} and labels of shape {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class Splits:
    """The three splits of a dataset.

    Attributes:
        train: the examples to fit on.
        valid: held-out examples for model selection (early stopping, learning rate).
        test: the examples to report results on.
        name: the dataset's name, e.g. ``"mnist"`` or ``"mnist-sample"``.
        n_classes: number of classes; labels are in ``0 .. n_classes − 1``.
    """

    train: Split
    valid: Split
    test: Split
    name: str
    n_classes: int = 10


# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------

# IDX type codes (third byte of the magic number) and the big-endian dtypes they stand for.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # read payloads in 1 MiB pieces so a lying header cannot make us allocate


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (the format of the MNIST files), gzipped or not.

    An IDX file is a big-endian header followed by the array in C order::

        magic   4 bytes: 0x00, 0x00, type code (0x08 = uint8, 0x09 int8, 0x0B int16,
                0x0C int32, 0x0D float32, 0x0E float64), number of dimensions d
        dims    d × uint32 (big-endian)
        data    prod(dims) items of the type, big-endian

    MNIST images have magic 0x00000803 (uint8, 3 dims), labels 0x00000801 (uint8, 1 dim).
    Gzip compression is detected from the first two bytes (0x1f 0x8b), not from the name.

    Args:
        path: the file.

    Returns:
        The array, with shape ``dims`` and a native-byte-order dtype (``uint8`` for MNIST).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not IDX (wrong magic or type code, truncated header), its payload
            is shorter or longer than the header declares, or its gzip stream is corrupt. The
            message names the file.
    """
    path = Path(path)
    with _open_maybe_gzip(path) as f:
        try:
            dtype, dims = _read_idx_header(f, path)
            nbytes = int(np.prod(dims, dtype=object)) * dtype.itemsize
            payload = _read_exact(f, nbytes, path, dims, dtype)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from e
    try:
        array = np.frombuffer(payload, dtype=dtype).reshape(dims)
    except ValueError as e:  # more dimensions than NumPy allows, or dims it cannot index
        raise ValueError(f"{path}: IDX dims {list(dims)} cannot be a NumPy array ({e})") from e
    return array.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``.

    The gzip stream is deterministic (no time stamp, no file name), so the same array always
    gives the same bytes.

    Raises:
        ValueError: the array's dtype has no IDX type code, it has no dimensions or more than
            255, or a dimension does not fit in a uint32.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _idx_type_code(array.dtype)
    if not 1 <= array.ndim <= 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"cannot write shape {array.shape} as IDX: need 1..255 dims < 2**32")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    if path.suffix == ".gz":
        with open(path, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _idx_type_code(dtype: np.dtype) -> int:
    """The IDX type code of ``dtype`` (whatever its byte order)."""
    for code, idx_dtype in _IDX_DTYPES.items():
        if dtype.newbyteorder("=") == idx_dtype.newbyteorder("="):
            return code
    names = ", ".join(str(d.newbyteorder("=")) for d in _IDX_DTYPES.values())
    raise ValueError(f"IDX cannot store dtype {dtype}; it stores {names}")


def _open_maybe_gzip(path: Path) -> BinaryIO:
    """Open ``path`` for reading, through gzip when it starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        compressed = f.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_idx_header(f: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Read and check the magic number and dims; return (big-endian dtype, dims)."""
    magic = f.read(4)
    if len(magic) < 4:
        raise ValueError(f"{path}: file too short for an IDX header ({len(magic)} bytes)")
    zero0, zero1, code, ndim = magic
    if zero0 or zero1 or code not in _IDX_DTYPES or ndim == 0:
        codes = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(
            f"{path}: not an IDX file: magic number 0x{magic.hex()}, expected 0x0000TTDD with "
            f"type code TT in {{{codes}}} (0x08 = uint8) and DD ≥ 1 dimensions "
            f"(MNIST: 0x00000803 images, 0x00000801 labels)"
        )
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(
            f"{path}: IDX header truncated: magic declares {ndim} dims ({4 * ndim} bytes), "
            f"file has {len(raw_dims)} bytes after the magic number"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    return _IDX_DTYPES[code], dims


def _read_exact(
    f: BinaryIO, nbytes: int, path: Path, dims: tuple[int, ...], dtype: np.dtype
) -> bytearray:
    """Read exactly ``nbytes`` up to the end of ``f``; raise if the file has fewer or more.

    Memory grows with the bytes actually read, never with what the header claims.
    """
    payload = bytearray()
    while len(payload) < nbytes:
        chunk = f.read(min(_CHUNK, nbytes - len(payload)))
        if not chunk:
            break
        payload += chunk
    actual = len(payload) + _count_rest(f)
    if actual != nbytes:
        what = "truncated" if actual < nbytes else "has extra bytes"
        raise ValueError(
            f"{path}: IDX payload {what}: the header declares dims {list(dims)} of "
            f"{dtype.newbyteorder('=')}, i.e. {nbytes} bytes, but the file holds {actual} "
            f"bytes after the header"
        )
    return payload


def _count_rest(f: BinaryIO) -> int:
    """Read ``f`` to its end in chunks, returning how many bytes were left."""
    count = 0
    while chunk := f.read(_CHUNK):
        count += len(chunk)
    return count


# --------------------------------------------------------------------------------------------
# Validation and splitting, shared by all datasets
# --------------------------------------------------------------------------------------------


class DatasetSizeWarning(UserWarning):
    """A dataset file holds a number of examples other than the official one (a subset?)."""


def check_images(images: np.ndarray, path: PathLike, image_shape: tuple[int, ...]) -> np.ndarray:
    """Check that ``images`` (read from ``path``) is ``uint8 [N, *image_shape]``; return it."""
    if images.dtype != np.uint8 or images.shape[1:] != image_shape:
        want = ", ".join(["N", *map(str, image_shape)])
        raise ValueError(
            f"{path}: expected uint8 images of shape [{want}], got {images.dtype} "
            f"of shape {list(images.shape)}"
        )
    return images


def check_labels(labels: np.ndarray, path: PathLike, n_classes: int) -> np.ndarray:
    """Check that ``labels`` (read from ``path``) is an integer ``[N]`` array in
    ``0 .. n_classes − 1``; return it as ``int64``.
    """
    if labels.ndim != 1 or labels.dtype.kind not in "ui":
        raise ValueError(
            f"{path}: expected integer labels of shape [N], got {labels.dtype} "
            f"of shape {list(labels.shape)}"
        )
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{path}: label out of range at index {i}: {int(labels[i])}, "
            f"expected 0..{n_classes - 1} ({bad.size} bad labels in all)"
        )
    return labels.astype(np.int64)


def check_same_count(
    images: np.ndarray, labels: np.ndarray, images_path: PathLike, labels_path: PathLike
) -> None:
    """Raise ``ValueError`` naming both files unless they hold as many images as labels."""
    if len(images) != len(labels):
        raise ValueError(
            f"image and label counts differ: {images_path} has {len(images)} images, "
            f"{labels_path} has {len(labels)} labels"
        )


def split_last(images: np.ndarray, labels: np.ndarray, n_valid: int) -> tuple[Split, Split]:
    """Split off the last ``n_valid`` examples: returns (first N − n_valid, last n_valid).

    This is how Courbariaux et al. (2016) split MNIST: the first 50 000 of the 60 000 training
    images to train on, the last 10 000 to validate on. The splits are views, not copies.

    Raises:
        ValueError: ``n_valid`` is not an integer in ``0 .. N − 1`` (at least one example must
            be left to train on).
    """
    n = len(labels)
    if isinstance(n_valid, bool) or not isinstance(n_valid, int | np.integer):
        raise ValueError(f"n_valid must be an int, got {n_valid!r}")
    if not 0 <= n_valid < n:
        raise ValueError(
            f"n_valid={n_valid} out of range: the training file has {n} examples, so n_valid "
            f"must be in 0..{n - 1}"
        )
    cut = n - int(n_valid)
    return Split(images[:cut], labels[:cut]), Split(images[cut:], labels[cut:])


def class_balance(labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Number of examples of each class: ``counts[c] = sum(labels == c)``, as ``int64``.

    Args:
        labels: non-negative integer labels.
        n_classes: length of the result (at least ``max(labels) + 1``); by default
            ``max(labels) + 1``.
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "ui" or (labels.size and labels.min() < 0):
        raise ValueError(f"class_balance needs non-negative integer labels, got {labels.dtype}")
    return np.bincount(labels.ravel(), minlength=n_classes or 0).astype(np.int64)


def array_md5(a: np.ndarray) -> str:
    """MD5 (hex) of the array's bytes in C order. Shape and dtype are not part of the hash."""
    return hashlib.md5(np.ascontiguousarray(a).tobytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# Finding and downloading files, shared by all datasets
# --------------------------------------------------------------------------------------------


def locate_files(directory: Path, names: list[str], dataset: str, url: str) -> dict[str, Path]:
    """Find each of ``names`` (``*.gz`` file names) in ``directory``, gzipped or not.

    For a name ``x.gz`` this accepts ``x.gz`` or ``x`` (preferring ``x.gz``).

    Returns:
        ``{name: path}`` for every name.

    Raises:
        FileNotFoundError: the directory or some files are missing; the message lists what was
            expected and suggests ``download=True``.
    """
    hint = f"Pass download=True (and data_dir) to fetch them from {url}"
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
            f"{dataset} files missing in {directory}{also}: {_describe(missing)}. "
            f"Expected {_describe(names)}. {hint}."
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


# --------------------------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------------------------

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
"""Default download location: a public mirror of the original files (same bytes)."""

MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
"""The four official MNIST files and their MD5 checksums."""

_MNIST_IMAGE_SHAPE = (28, 28)
_MNIST_CLASSES = 10
_MNIST_OFFICIAL_SIZE = {"train": 60_000, "test": 10_000}
_MNIST_PAIRS = {  # split -> (images file, labels file)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

SAMPLE_N_VALID = 2_000
"""Validation images of :func:`mnist_sample` (the last of its 10 000 training images)."""


def load_mnist(
    data_dir: PathLike | None = None,
    *,
    download: bool = False,
    base_url: str = MNIST_URL,
    n_valid: int = 10_000,
    checksums: Mapping[str, str] | None = None,
) -> Splits:
    """Load MNIST from the four official IDX files, split as in Courbariaux et al. (2016).

    Splits: ``train`` = the first ``N − n_valid`` training images, ``valid`` = the last
    ``n_valid`` training images, ``test`` = the test images. With the official files and the
    default ``n_valid`` that is 50 000 / 10 000 / 10 000. Images are ``uint8 [N, 28, 28]``,
    labels ``int64 [N]``.

    Args:
        data_dir: directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``)
            or not. Default: ``$BINARYNET_DATA/mnist`` if that variable is set, else
            ``./data/mnist``.
        download: fetch the files missing from ``data_dir`` (which must then be given) from
            ``base_url``, checking their MD5s. Needs pooch.
        base_url: where to download from; file names are appended to it.
        n_valid: number of training images (the last ones) held out for validation.
        checksums: ``{file name: md5}`` to expect instead of :data:`MNIST_FILES`' official
            values, for a mirror serving other files (only used when downloading).

    Raises:
        FileNotFoundError: ``data_dir`` or a file is missing (the message lists what is needed).
        ValueError: a file is malformed (see :func:`read_idx`), images are not 28×28, counts
            of images and labels differ, a label is outside 0..9, ``n_valid`` is out of range,
            a download's checksum does not match, or ``download=True`` without ``data_dir``.

    Warns:
        DatasetSizeWarning: the train or test files do not hold 60 000 / 10 000 examples (a
            subset works, but results are not comparable with the paper's).
    """
    directory = _mnist_dir(data_dir, download)
    unknown = sorted(set(checksums or {}) - set(MNIST_FILES))
    if unknown:
        raise ValueError(f"checksums for unknown files {unknown}; MNIST has {list(MNIST_FILES)}")
    if download:
        download_files(directory, {**MNIST_FILES, **(checksums or {})}, base_url)
    paths = locate_files(directory, list(MNIST_FILES), "MNIST", base_url)
    arrays = {split: _read_mnist_pair(paths[x], paths[y]) for split, (x, y) in _MNIST_PAIRS.items()}
    for split, (images, _) in arrays.items():
        _warn_if_not_official(len(images), split, paths[_MNIST_PAIRS[split][0]])
    train, valid = split_last(*arrays["train"], n_valid)
    return Splits(train, valid, Split(*arrays["test"]), name="mnist", n_classes=_MNIST_CLASSES)


def mnist_sample() -> Splits:
    """A small real MNIST sample shipped inside the package: no files, no download.

    Built by ``tools/make_mnist_sample.py`` from the official files:

    - ``train`` (8 000): official training images 0 .. 7 999;
    - ``valid`` (2 000): official training images 8 000 .. 9 999 (the last 2 000 of the
      sample's 10 000 training images, as :func:`load_mnist` holds out the last ones);
    - ``test`` (2 000): every fifth official test image (indices 0, 5, …, 9 995), so that both
      halves of the test set (the cleaner first 5 000 and the harder last 5 000) are in it.

    Images are ``uint8 [N, 28, 28]``, labels ``int64 [N]``; every class is present in each split.
    """
    root = resources.files("binarynet") / "_sample" / "mnist"
    arrays = {}
    for split, (images_name, labels_name) in _MNIST_PAIRS.items():
        with (
            resources.as_file(root / images_name) as x,
            resources.as_file(root / labels_name) as y,
        ):
            arrays[split] = _read_mnist_pair(x, y)
    train, valid = split_last(*arrays["train"], SAMPLE_N_VALID)
    return Splits(
        train, valid, Split(*arrays["test"]), name="mnist-sample", n_classes=_MNIST_CLASSES
    )


def _mnist_dir(data_dir: PathLike | None, download: bool) -> Path:
    """The directory to load MNIST from (see :func:`load_mnist` for the default)."""
    if data_dir is not None:
        return Path(data_dir)
    if download:
        raise ValueError("download=True needs data_dir: the directory to save MNIST files in")
    return Path(os.environ.get("BINARYNET_DATA", "data")) / "mnist"


def _read_mnist_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one images file and its labels file."""
    images = check_images(read_idx(images_path), images_path, _MNIST_IMAGE_SHAPE)
    labels = check_labels(read_idx(labels_path), labels_path, _MNIST_CLASSES)
    check_same_count(images, labels, images_path, labels_path)
    return images, labels


def _warn_if_not_official(n: int, split: str, path: Path) -> None:
    """Warn when an MNIST ``split`` file does not hold the official number of examples."""
    official = _MNIST_OFFICIAL_SIZE[split]
    if n != official:
        warnings.warn(
            f"{path} holds {n} examples; the official MNIST {split} set has {official}. "
            "Using it as given (a subset?); results are not comparable with the paper's.",
            DatasetSizeWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------------------------

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""Class names of CIFAR-10, by class id."""

CIFAR10_BATCHES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
)
"""The pickled batches of the standard ``cifar-10-batches-py`` folder: five training, one test."""

CIFAR10_JPEG_ARCHIVE = "cifar10_jpeg_q75.tar.gz"
"""The image archive of the JPEG copy of CIFAR-10 (beside its ``index.csv``)."""

CIFAR10_JPEG_MD5: dict[str, str] = {
    "train": "7c618da940c26da995ad1feaa1bac54c",
    "test": "a085fc7e64a3745bfb901013e5654098",
}
"""MD5 (:func:`array_md5`) of the JPEG copy decoded with Pillow ``convert('RGB')`` in index
order: ``uint8 [50000, 32, 32, 3]`` training and ``[10000, 32, 32, 3]`` test images."""

_CIFAR10_IMAGE_SHAPE = (32, 32, 3)
_CIFAR10_CLASS_COUNT = 10
_CIFAR10_OFFICIAL_SIZE = {"train": 50_000, "test": 10_000}
_CIFAR10_PICKLE_DIR = "cifar-10-batches-py"
_CIFAR10_INDEX = "index.csv"
_CIFAR10_INDEX_HEADER = ["split", "index", "label", "path"]
_CIFAR10_CACHE_FORMAT = "binarynet-cifar10-jpeg-cache-1"
_MAX_JPEG_BYTES = 1 << 16  # a 32×32 JPEG is 1–2 kB; refuse members that cannot be one
_CIFAR10_EXPECTED = (
    "Expected either the standard python batches (data_batch_1 … data_batch_5 and test_batch: "
    "the cifar-10-batches-py folder or its parent) or the JPEG copy (index.csv beside "
    f"{CIFAR10_JPEG_ARCHIVE} or beside its extracted train/ and test/ folders)"
)


class ChecksumWarning(UserWarning):
    """Arrays differ from a recorded checksum: a stale cache, or a JPEG decoder that decodes
    differently from the one the reference checksums were made with."""


def load_cifar10(
    data_dir: PathLike, *, n_valid: int = 5_000, cache_dir: PathLike | None = None
) -> Splits:
    """Load CIFAR-10, split as in Courbariaux et al. (2016): the first ``50 000 − n_valid``
    training images to train on, the last ``n_valid`` to validate on, the test images to report.

    Two layouts are read, recognised from the files in ``data_dir``:

    - **The standard python version** (``cifar-10-batches-py``, given as that folder or its
      parent): pickled dicts ``data_batch_1`` … ``data_batch_5`` and ``test_batch``, each with
      ``b'data'``, a ``uint8 [10000, 3072]`` array whose rows are one image in channel-major
      order (1024 red, 1024 green, then 1024 blue values, each a 32×32 image in row-major
      order), and ``b'labels'``, a list of 10 000 ints in 0..9. The pixels come back exactly,
      transposed to ``[N, 32, 32, 3]``. ``Splits.name`` is ``"cifar10"``.
    - **The JPEG copy** (``Splits.name`` ``"cifar10-jpeg"``; report results on it as "CIFAR-10
      (JPEG q75 copy)": its pixels are lossy): ``index.csv`` with header
      ``split,index,label,path``, one row per image (``split`` is ``train`` or ``test``,
      ``index`` its position 0..N − 1 in that split, the training rows in the original
      CIFAR-10 order, ``path`` relative, e.g. ``train/frog/0000.jpg``), beside
      :data:`CIFAR10_JPEG_ARCHIVE` (read member by member with :mod:`tarfile`, never extracted)
      or beside the extracted ``train/`` and ``test/`` folders. Each image is decoded with
      Pillow ``convert('RGB')``; the full copy decodes to the arrays of
      :data:`CIFAR10_JPEG_MD5` (MD5 7c618da940c26da995ad1feaa1bac54c for the 50 000 training
      images, a085fc7e64a3745bfb901013e5654098 for the 10 000 test images). A decoder giving
      other pixels is reported with a :class:`ChecksumWarning`. Needs Pillow.

    Images are ``uint8 [N, 32, 32, 3]`` (NHWC, RGB) and labels ``int64 [N]`` (class names in
    :data:`CIFAR10_CLASSES`). With the full data and the default ``n_valid`` the splits hold
    45 000 / 5 000 / 10 000 images.

    Pickle can run code when it loads a file. The batches are therefore read with an
    unpickler that only accepts what a CIFAR-10 batch contains (dicts, lists, bytes, numbers
    and NumPy arrays); any other object stops the load with a ``ValueError``. Still, only load
    files from a source you trust.

    Args:
        data_dir: the folder, in one of the layouts above.
        n_valid: number of training images (the last ones) held out for validation.
        cache_dir: for the JPEG copy only: a writable folder in which to keep the decoded
            images as ``cifar10-jpeg-{train,test}.npy`` (+ ``cifar10-jpeg.json`` recording their
            shapes, MD5s and the MD5s of ``index.csv`` and the archive). A later call with the
            same folder loads them instead of decoding the JPEGs again, after checking shape and
            MD5 (a cache that fails the check is rebuilt, with a :class:`ChecksumWarning`). For
            an extracted tree the cache is keyed by ``index.csv`` and the folder's path only:
            delete it after editing images. ``None`` (default): no cache. (Decoding all 60 000
            images takes about 10 s on one core; loading them from the cache about 1 s.)

    Raises:
        FileNotFoundError: ``data_dir`` or a file the layout needs is missing (the message
            lists what is expected).
        ValueError: a batch is not a readable pickle of the expected dict, arrays or labels;
            ``index.csv`` has a malformed row (the message gives the line); an image listed in
            ``index.csv`` is missing from the archive (from an extracted tree:
            ``FileNotFoundError``), is not a JPEG or is not 32×32; counts of images and labels
            differ; ``n_valid`` is out of range.

    Warns:
        DatasetSizeWarning: the training or test set does not hold 50 000 / 10 000 images.
        ChecksumWarning: the full JPEG copy decodes to pixels other than the reference ones,
            or a cache file failed its check and was rebuilt.
    """
    directory = Path(data_dir)
    layout, root = _cifar10_layout(directory)
    if layout == "pickle":
        arrays = _read_cifar10_batches(root)
        name = "cifar10"
    else:
        arrays = _read_cifar10_jpeg(root, None if cache_dir is None else Path(cache_dir))
        name = "cifar10-jpeg"
    for split, (images, _) in arrays.items():
        official = _CIFAR10_OFFICIAL_SIZE[split]
        if len(images) != official:
            warnings.warn(
                f"{root}: the CIFAR-10 {split} set holds {len(images)} images, the official "
                f"one {official}. Using it as given (a subset?); results are not comparable "
                "with the paper's.",
                DatasetSizeWarning,
                stacklevel=2,
            )
    train, valid = split_last(*arrays["train"], n_valid)
    test = Split(*arrays["test"])
    return Splits(train, valid, test, name=name, n_classes=_CIFAR10_CLASS_COUNT)


def _cifar10_layout(directory: Path) -> tuple[str, Path]:
    """``("pickle", folder with the batches)`` or ``("jpeg", folder with index.csv)``."""
    if not directory.is_dir():
        raise FileNotFoundError(f"CIFAR-10 directory not found: {directory}. {_CIFAR10_EXPECTED}.")
    for candidate in (directory, directory / _CIFAR10_PICKLE_DIR):
        present = [b for b in CIFAR10_BATCHES if (candidate / b).is_file()]
        if present:
            missing = [b for b in CIFAR10_BATCHES if b not in present]
            if missing:
                raise FileNotFoundError(
                    f"CIFAR-10 batches missing in {candidate}: {', '.join(missing)}. Expected "
                    f"all of {', '.join(CIFAR10_BATCHES)}."
                )
            return "pickle", candidate
    if (directory / _CIFAR10_INDEX).is_file():
        return "jpeg", directory
    raise FileNotFoundError(f"no CIFAR-10 data in {directory}. {_CIFAR10_EXPECTED}.")


# -- the python batches ------------------------------------------------------------------------

_NDARRAY_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's _reconstruct, wherever it lives
_NUMPY_SCALAR = np.float64(0).__reduce__()[0]  # numpy's scalar(), wherever it lives
_NDARRAY_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]  # how pickle protocol 5 stores arrays
_CIFAR10_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
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
            return _CIFAR10_PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobalError(
                f"it refers to {module}.{name}, which a CIFAR-10 batch never contains (only "
                "NumPy arrays, lists, dicts, bytes and numbers); refusing to load it"
            ) from None


def _read_cifar10_batches(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the five training batches and the test batch of ``root``."""
    parts = [_read_cifar10_batch(root / name) for name in CIFAR10_BATCHES[:5]]
    train = (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]))
    return {"train": train, "test": _read_cifar10_batch(root / CIFAR10_BATCHES[5])}


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
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
    n_pixels = int(np.prod(_CIFAR10_IMAGE_SHAPE))
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
    label_array = check_labels(label_array, f"{path} b'labels'", _CIFAR10_CLASS_COUNT)
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


# -- the JPEG copy -----------------------------------------------------------------------------


def _read_cifar10_jpeg(
    root: Path, cache_dir: Path | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read ``index.csv`` and the images it lists (from the cache when it is valid)."""
    index_path = root / _CIFAR10_INDEX
    index = _read_cifar10_index(index_path)
    archive = root / CIFAR10_JPEG_ARCHIVE
    if archive.is_file():
        source = {
            "index_md5": _file_md5(index_path),
            "archive_md5": _file_md5(archive),
            "archive_bytes": archive.stat().st_size,
        }
    elif any((root / split).is_dir() for split in index):
        source = {"index_md5": _file_md5(index_path), "tree": str(root.resolve())}
    else:
        raise FileNotFoundError(
            f"CIFAR-10 JPEG images missing in {root}: found {_CIFAR10_INDEX} but neither "
            f"{CIFAR10_JPEG_ARCHIVE} nor the extracted {'/, '.join(index)}/ folders. "
            f"{_CIFAR10_EXPECTED}."
        )
    counts = {split: len(labels) for split, (labels, _) in index.items()}
    images = None if cache_dir is None else _load_jpeg_cache(cache_dir, source, counts)
    if images is None:
        images = _decode_cifar10_jpegs(root, archive if archive.is_file() else None, index)
        md5s = {split: array_md5(x) for split, x in images.items()}
        for split, md5 in md5s.items():
            official = counts[split] == _CIFAR10_OFFICIAL_SIZE[split]
            if official and md5 != CIFAR10_JPEG_MD5[split]:
                warnings.warn(
                    f"{root}: the {split} images decode to MD5 {md5}, not the reference "
                    f"{CIFAR10_JPEG_MD5[split]} (Pillow convert('RGB')): another JPEG decoder "
                    "or a modified copy; pixels (and accuracies) may differ slightly",
                    ChecksumWarning,
                    stacklevel=4,
                )
        if cache_dir is not None:
            _save_jpeg_cache(cache_dir, source, images, md5s)
    return {split: (images[split], labels) for split, (labels, _) in index.items()}


def _read_cifar10_index(path: Path) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Parse ``index.csv``: ``{split: (int64 labels, relative paths)}`` in index order."""
    rows: dict[str, dict[int, tuple[int, str]]] = {"train": {}, "test": {}}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != _CIFAR10_INDEX_HEADER:
                raise ValueError(
                    f"{path}: header {header!r}, expected {','.join(_CIFAR10_INDEX_HEADER)}"
                )
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
    if not 0 <= y < _CIFAR10_CLASS_COUNT:
        raise ValueError(f"{where}: label {y} out of range, expected 0..{_CIFAR10_CLASS_COUNT - 1}")
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


def _decode_cifar10_jpegs(
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
        out = np.empty((len(members), *_CIFAR10_IMAGE_SHAPE), dtype=np.uint8)
        for i, member in enumerate(members):
            out[i] = _decode_jpeg(blobs[member], f"{where}{member}", _CIFAR10_IMAGE_SHAPE)
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
            f"{archive} lacks {len(missing)} of the images listed in {_CIFAR10_INDEX} "
            f"(e.g. {', '.join(missing[:3])}); is it the archive that goes with this index?"
        )
    return found


def _read_small_file(path: Path) -> bytes:
    """The bytes of an image file of the extracted tree (at most :data:`_MAX_JPEG_BYTES`)."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 image listed in {_CIFAR10_INDEX} not found: {path}")
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


def _file_md5(path: Path) -> str:
    """MD5 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _jpeg_cache_paths(cache_dir: Path) -> tuple[Path, dict[str, Path]]:
    """(metadata file, {split: .npy file}) of the decoded-image cache in ``cache_dir``."""
    return cache_dir / "cifar10-jpeg.json", {
        split: cache_dir / f"cifar10-jpeg-{split}.npy" for split in ("train", "test")
    }


def _load_jpeg_cache(
    cache_dir: Path, source: dict[str, Any], counts: dict[str, int]
) -> dict[str, np.ndarray] | None:
    """The cached images if the cache is for ``source`` and passes its checks, else None."""
    meta_path, npy_paths = _jpeg_cache_paths(cache_dir)
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != _CIFAR10_CACHE_FORMAT:
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
        want_shape = [counts[split], *_CIFAR10_IMAGE_SHAPE]
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


def _save_jpeg_cache(
    cache_dir: Path, source: dict[str, Any], images: dict[str, np.ndarray], md5s: dict[str, str]
) -> None:
    """Write the decoded images and their metadata to ``cache_dir`` (each file atomically)."""
    meta_path, npy_paths = _jpeg_cache_paths(cache_dir)
    meta = {
        "format": _CIFAR10_CACHE_FORMAT,
        "source": source,
        "arrays": {
            split: {"shape": list(x.shape), "dtype": "uint8", "md5": md5s[split]}
            for split, x in images.items()
        },
    }
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for split, path in npy_paths.items():
            _atomic_write(path, lambda f, x=images[split]: np.save(f, x, allow_pickle=False))
        text = json.dumps(meta, indent=2) + "\n"
        _atomic_write(meta_path, lambda f: f.write(text.encode()))
    except OSError as e:
        warnings.warn(
            f"cannot write the CIFAR-10 cache in {cache_dir} ({e}); continuing without",
            stacklevel=4,
        )


def _atomic_write(path: Path, write: Any) -> None:
    """Create ``path`` through a temporary file in its folder, renamed over it when complete."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# SVHN
# --------------------------------------------------------------------------------------------

SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
"""Where the SVHN "format 2" (cropped digits) files are published."""

SVHN_FILES: dict[str, str] = {
    "train": "train_32x32.mat",
    "test": "test_32x32.mat",
    "extra": "extra_32x32.mat",
}
"""The SVHN format-2 files, by split."""

_SVHN_OFFICIAL_SIZE = {"train": 73_257, "test": 26_032, "extra": 531_131}
_SVHN_IMAGE_SHAPE = (32, 32, 3)
_SVHN_CLASS_COUNT = 10
_SVHN_GATHER_CHUNK = 8192  # images per transposing copy, to bound temporary memory


def load_svhn(
    data_dir: PathLike,
    *,
    extra: bool = False,
    valid_per_class: int = 400,
    extra_valid_per_class: int = 200,
    seed: int = 0,
) -> Splits:
    """Load SVHN (Netzer et al. 2011, cropped digits) from its MATLAB files.

    Files (from :data:`SVHN_URL`): ``train_32x32.mat``, ``test_32x32.mat`` and, with
    ``extra=True``, ``extra_32x32.mat``. Each holds ``X``, ``uint8 [32, 32, 3, N]`` (height,
    width, RGB, image), and ``y``, ``[N, 1]`` labels 1..10 where 10 stands for the digit 0.
    Images come back as ``uint8 [N, 32, 32, 3]`` (NHWC) and labels as ``int64`` digits 0..9
    (label 10 → 0).

    Validation split. BinaryNet's Theano ``svhn.py`` loads pylearn2's ``SVHN('splitted_train')``
    and ``SVHN('valid')``: the protocol of Sermanet et al. (2012) and Goodfellow et al. (2013),
    where the validation set is 400 random images per class from ``train`` and 200 per class
    from ``extra`` (6 000), and the training set is everything else of ``train`` + ``extra``
    (598 388). ``extra=True`` reproduces that, with the random choice drawn from
    ``numpy.random.default_rng(seed)`` (pylearn2's own draw cannot be recovered). Without
    ``extra`` the validation set is the same 400 per class from ``train`` (4 000, leaving
    69 257 to train on): a class-balanced hold-out of the same kind rather than the last N
    images, because the files are not shuffled and nearby images come from the same streets.
    Within each split, images keep their file order (train images before extra images).

    Memory: ``extra_32x32.mat`` is 1.6 GB of pixels, and SciPy reads it whole; with
    ``extra=True`` expect a peak near 3.7 GB.

    Args:
        data_dir: the folder holding the ``.mat`` files.
        extra: also load ``extra_32x32.mat`` (531 131 easier images), as the paper does.
        valid_per_class: validation images drawn from each class of ``train``.
        extra_valid_per_class: validation images drawn from each class of ``extra`` (used
            only with ``extra=True``).
        seed: seed of the generator that draws the validation images.

    Raises:
        ImportError: SciPy is not installed.
        FileNotFoundError: ``data_dir`` or a file is missing (the message lists the files).
        ValueError: a file is not a MATLAB v5 file with the expected ``X`` and ``y``, a label
            is outside 1..10, a class has fewer images than the validation set needs.

    Warns:
        DatasetSizeWarning: a file does not hold the official number of images.
    """
    directory = Path(data_dir)
    names = ["train", "test", *(["extra"] if extra else [])]
    _check_counts_arg("valid_per_class", valid_per_class)
    _check_counts_arg("extra_valid_per_class", extra_valid_per_class)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"SVHN directory not found: {directory}. Expected it to hold "
            f"{', '.join(SVHN_FILES[n] for n in names)} (from {SVHN_URL})."
        )
    missing = [SVHN_FILES[n] for n in names if not (directory / SVHN_FILES[n]).is_file()]
    if missing:
        raise FileNotFoundError(
            f"SVHN files missing in {directory}: {', '.join(missing)}. Expected "
            f"{', '.join(SVHN_FILES[n] for n in names)} (from {SVHN_URL})."
        )
    rng = np.random.default_rng(seed)
    sources = []  # (raw X [32, 32, 3, N], labels, validation mask) per file, train first
    for split, per_class in (("train", valid_per_class), ("extra", extra_valid_per_class)):
        if split not in names:
            continue
        path = directory / SVHN_FILES[split]
        raw, labels = _read_svhn_mat(path)
        _warn_svhn_size(len(labels), split, path)
        sources.append((raw, labels, _per_class_holdout(labels, per_class, rng, path)))
    train = _gather_svhn([(x, y, ~mask) for x, y, mask in sources])
    valid = _gather_svhn([(x, y, mask) for x, y, mask in sources])
    del sources
    test_path = directory / SVHN_FILES["test"]
    raw, labels = _read_svhn_mat(test_path)
    _warn_svhn_size(len(labels), "test", test_path)
    test = _gather_svhn([(raw, labels, np.ones(len(labels), dtype=bool))])
    name = "svhn+extra" if extra else "svhn"
    return Splits(train, valid, test, name=name, n_classes=_SVHN_CLASS_COUNT)


def _check_counts_arg(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one SVHN file: (``X`` as stored, ``uint8 [32, 32, 3, N]``; int64 digits)."""
    try:
        from scipy.io import loadmat
    except ImportError as e:
        raise ImportError("reading SVHN's .mat files needs SciPy: pip install scipy") from e
    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except NotImplementedError as e:  # MATLAB v7.3 (HDF5)
        raise ValueError(
            f"{path}: MATLAB v7.3 (HDF5) files are not supported; expected the SVHN format-2 "
            f"file as published (MATLAB v5) ({e})"
        ) from e
    except Exception as e:  # scipy raises many kinds of errors on damaged files
        raise ValueError(f"{path}: not a readable MATLAB v5 file ({e!r})") from e
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(
            f"{path}: expected variables X (uint8 [32, 32, 3, N]) and y ([N, 1] labels 1..10), "
            f"found {found}"
        )
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 4) or (
        x.shape[:3] != _SVHN_IMAGE_SHAPE
    ):
        raise ValueError(
            f"{path}: X must be uint8 [32, 32, 3, N] (height, width, RGB, image), got "
            f"{getattr(x, 'dtype', type(x).__name__)} of shape {list(np.shape(x))}"
        )
    n = x.shape[3]
    y = np.asarray(y)
    if y.dtype.kind not in "uif" or y.size != n or y.ndim > 2 or (y.ndim == 2 and 1 not in y.shape):
        raise ValueError(
            f"{path}: y must hold {n} numeric labels as [N, 1], got {y.dtype} of shape "
            f"{list(y.shape)}"
        )
    y = y.reshape(-1)
    bad = np.flatnonzero(~np.isin(y, np.arange(1, 11)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{path}: label out of range at index {i}: {y[i].item()!r}, expected 1..10 "
            f"(10 stands for the digit 0; {bad.size} bad labels in all)"
        )
    labels = y.astype(np.int64) % 10  # 10 -> 0
    return x, labels


def _warn_svhn_size(n: int, split: str, path: Path) -> None:
    official = _SVHN_OFFICIAL_SIZE[split]
    if n != official:
        warnings.warn(
            f"{path} holds {n} images; the official SVHN {split} file has {official}. Using it "
            "as given (a subset?); results are not comparable with the paper's.",
            DatasetSizeWarning,
            stacklevel=3,
        )


def _per_class_holdout(
    labels: np.ndarray, per_class: int, rng: np.random.Generator, path: Path
) -> np.ndarray:
    """A boolean mask choosing ``per_class`` random examples of each class 0..9."""
    mask = np.zeros(len(labels), dtype=bool)
    if per_class == 0:
        return mask
    counts = class_balance(labels, _SVHN_CLASS_COUNT)
    short = [c for c in range(_SVHN_CLASS_COUNT) if counts[c] <= per_class]
    if short:
        raise ValueError(
            f"{path}: cannot hold out {per_class} validation images per class: digit(s) "
            f"{short} have only {[int(counts[c]) for c in short]} images (at least one of each "
            "must remain to train on)"
        )
    for c in range(_SVHN_CLASS_COUNT):
        mask[rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False)] = True
    return mask


def _gather_svhn(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Split:
    """Concatenate the masked images of each ``(X [32, 32, 3, N], labels, mask)`` as NHWC."""
    total = sum(int(mask.sum()) for _, _, mask in parts)
    images = np.empty((total, *_SVHN_IMAGE_SHAPE), dtype=np.uint8)
    start = 0
    for raw, _, mask in parts:
        chosen = np.flatnonzero(mask)
        for lo in range(0, len(chosen), _SVHN_GATHER_CHUNK):
            idx = chosen[lo : lo + _SVHN_GATHER_CHUNK]
            images[start : start + len(idx)] = raw[..., idx].transpose(3, 0, 1, 2)
            start += len(idx)
    labels = np.concatenate([y[mask] for _, y, mask in parts])
    return Split(images, labels)


DATASETS = ("mnist", "cifar10", "svhn")


def load_dataset(
    name: str, data_dir: PathLike | None = None, *, cache_dir: PathLike | None = None
) -> Splits:
    """One of :data:`DATASETS` by name: MNIST from ``data_dir`` (the bundled sample when None),
    CIFAR-10 (python batches or the JPEG copy, decoded images cached in ``cache_dir``) or SVHN
    (.mat files) from ``data_dir``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    if name == "mnist":
        return mnist_sample() if data_dir is None else load_mnist(data_dir)
    if data_dir is None:
        raise ValueError(
            f"dataset {name!r} needs a data directory (data_dir, --data-dir); only MNIST is bundled"
        )
    if name == "cifar10":
        return load_cifar10(data_dir, cache_dir=cache_dir)
    return load_svhn(data_dir)
