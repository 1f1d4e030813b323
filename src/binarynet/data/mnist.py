"""MNIST (LeCun et al. 1998) from its four official IDX files, and the small real sample of it
that ships inside the package (``binarynet/_sample/mnist``: no files, no download).

Both are split as in Courbariaux et al. (2016): the last training images are held out for
validation (:func:`~binarynet.data.splits.split_last`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np

from binarynet.data.checks import (
    PathLike,
    check_images,
    check_labels,
    check_same_count,
    warn_if_not_official,
)
from binarynet.data.files import download_files, locate_files
from binarynet.data.idx import read_idx
from binarynet.data.splits import Split, Splits, split_last

__all__ = ["MNIST_FILES", "MNIST_URL", "SAMPLE_N_VALID", "load_mnist", "mnist_sample"]

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
        official = _MNIST_OFFICIAL_SIZE[split]
        warn_if_not_official(len(images), official, "MNIST", split, paths[_MNIST_PAIRS[split][0]])
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
