"""Datasets as uint8 arrays, one module per format or dataset, and the deployable preprocessors.
Imports NumPy (and Pillow, SciPy, pooch where a format needs them); never torch or training.

MNIST (IDX files, or a small sample shipped inside the package), CIFAR-10 (the standard pickled
batches or a JPEG copy) and SVHN (``.mat`` files).

This package needs only NumPy (pooch too, but only when downloading; Pillow to decode the JPEG
copy of CIFAR-10; SciPy to read SVHN's ``.mat`` files), so the torch-free engine can use it.
Images stay ``uint8`` end to end: the conversion to the first layer's 8-bit fixed-point input,
x = (p − 128)·2⁻⁷, happens inside the model.

Every dataset comes as a :class:`Splits` of three :class:`Split` objects (train, valid, test).
Images are ``[N, H, W]`` for grey-scale data (MNIST: ``[N, 28, 28]``) and ``[N, H, W, C]`` for
colour data; labels are ``int64`` in ``0 .. n_classes − 1``.

One module per job; everything public is re-exported here:

- :mod:`~binarynet.data.splits` — :class:`Split`, :class:`Splits`, :func:`split_last`,
  :func:`class_balance`;
- :mod:`~binarynet.data.checks` — the checks every reader applies (:func:`check_images`,
  :func:`check_labels`, :func:`check_same_count`), :class:`DatasetSizeWarning` for a file of
  unofficial size, :class:`ChecksumWarning`;
- :mod:`~binarynet.data.files` — :func:`locate_files`, :func:`download_files` (pooch), MD5s;
- :mod:`~binarynet.data.idx` — the IDX format (:func:`read_idx`, :func:`write_idx`);
- :mod:`~binarynet.data.mnist` — :func:`load_mnist`, :func:`mnist_sample`;
- :mod:`~binarynet.data.cifar10` — :func:`load_cifar10`, over :mod:`~.cifar10_layout` (the two
  layouts), :mod:`~.cifar10_pickle` (the batches, restricted unpickler), :mod:`~.cifar10_jpeg`
  (``index.csv``, archive, decoding) and :mod:`~.cifar10_cache` (the decoded ``.npy`` cache);
- :mod:`~binarynet.data.svhn` — :func:`load_svhn`;
- :mod:`~binarynet.data.registry` — :data:`DATASETS`, :func:`load_dataset` (by name).

Example::

    from binarynet.data import load_cifar10, load_mnist, load_svhn, mnist_sample

    splits = load_mnist("data/mnist", download=True)   # 50 000 / 10 000 / 10 000
    sample = mnist_sample()                            # 8 000 / 2 000 / 2 000, no download
    cifar = load_cifar10("data/cifar-10-batches-py")   # 45 000 / 5 000 / 10 000, [N, 32, 32, 3]
    svhn = load_svhn("data/svhn", extra=True)          # 598 388 / 6 000 / 26 032

Preprocessing beyond the identity (global contrast normalisation, ZCA whitening, quantisation
back to uint8) lives in :mod:`binarynet.data.preprocess`, training-time augmentation in
:mod:`binarynet.training.augment`.
"""

from __future__ import annotations

from binarynet.data.checks import (
    ChecksumWarning,
    DatasetSizeWarning,
    PathLike,
    check_images,
    check_labels,
    check_same_count,
)
from binarynet.data.cifar10 import load_cifar10
from binarynet.data.cifar10_jpeg import CIFAR10_JPEG_MD5
from binarynet.data.cifar10_layout import CIFAR10_BATCHES, CIFAR10_CLASSES, CIFAR10_JPEG_ARCHIVE
from binarynet.data.files import array_md5, download_files, locate_files
from binarynet.data.idx import read_idx, write_idx
from binarynet.data.mnist import MNIST_FILES, MNIST_URL, SAMPLE_N_VALID, load_mnist, mnist_sample
from binarynet.data.registry import DATASETS, load_dataset
from binarynet.data.splits import Split, Splits, class_balance, split_last
from binarynet.data.svhn import SVHN_FILES, SVHN_URL, load_svhn

__all__ = [
    "CIFAR10_BATCHES",
    "CIFAR10_CLASSES",
    "CIFAR10_JPEG_ARCHIVE",
    "CIFAR10_JPEG_MD5",
    "DATASETS",
    "MNIST_FILES",
    "MNIST_URL",
    "SAMPLE_N_VALID",
    "SVHN_FILES",
    "SVHN_URL",
    "ChecksumWarning",
    "DatasetSizeWarning",
    "PathLike",
    "Split",
    "Splits",
    "array_md5",
    "check_images",
    "check_labels",
    "check_same_count",
    "class_balance",
    "download_files",
    "load_cifar10",
    "load_dataset",
    "load_mnist",
    "load_svhn",
    "locate_files",
    "mnist_sample",
    "read_idx",
    "split_last",
    "write_idx",
]
