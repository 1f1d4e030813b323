"""Datasets as uint8 arrays: the IDX file format, MNIST, and a small MNIST sample shipped inside
the package.

This module needs only NumPy (pooch too, but only when downloading), so the torch-free engine
can use it. Images stay ``uint8`` end to end: the conversion to the first layer's 8-bit
fixed-point input, x = (p − 128)·2⁻⁷, happens inside the model.

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
"""

from __future__ import annotations

import gzip
import hashlib
import os
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = [
    "MNIST_FILES",
    "MNIST_URL",
    "DatasetSizeWarning",
    "Split",
    "Splits",
    "array_md5",
    "check_images",
    "check_labels",
    "check_same_count",
    "class_balance",
    "download_files",
    "load_mnist",
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
    array = np.frombuffer(payload, dtype=dtype).reshape(dims)
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
