"""The datasets by name, for the command line and the training recipes: :data:`DATASETS` and
:func:`load_dataset`."""

from __future__ import annotations

from binarynet.data.checks import PathLike
from binarynet.data.cifar10 import load_cifar10
from binarynet.data.mnist import load_mnist, mnist_sample
from binarynet.data.splits import Splits
from binarynet.data.svhn import load_svhn

__all__ = ["DATASETS", "load_dataset"]

DATASETS = ("mnist", "cifar10", "svhn")
"""The names :func:`load_dataset` accepts."""


def load_dataset(
    name: str,
    data_dir: PathLike | None = None,
    *,
    cache_dir: PathLike | None = None,
    download: bool = False,
) -> Splits:
    """One of :data:`DATASETS` by name: MNIST from ``data_dir`` (the bundled sample when None),
    CIFAR-10 (python batches or the JPEG copy, decoded images cached in ``cache_dir``) or SVHN
    (.mat files) from ``data_dir``. ``download``: fetch the MNIST files missing from
    ``data_dir`` (:func:`load_mnist`); the other datasets are not downloaded."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    if download and name != "mnist":
        raise ValueError(f"only mnist can be downloaded; put the {name} files in data_dir")
    if download and data_dir is None:
        raise ValueError("download needs a directory to save the files in (data_dir, --data-dir)")
    if name == "mnist":
        return mnist_sample() if data_dir is None else load_mnist(data_dir, download=download)
    if data_dir is None:
        raise ValueError(
            f"dataset {name!r} needs a data directory (data_dir, --data-dir); only MNIST is bundled"
        )
    if name == "cifar10":
        return load_cifar10(data_dir, cache_dir=cache_dir)
    return load_svhn(data_dir)
