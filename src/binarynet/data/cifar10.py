"""CIFAR-10 (Krizhevsky 2009): :func:`load_cifar10` reads either layout of
:mod:`binarynet.data.cifar10_layout` (the python batches through
:mod:`binarynet.data.cifar10_pickle`, the JPEG copy through :mod:`binarynet.data.cifar10_jpeg`)
and splits it as Courbariaux et al. (2016) do.
"""

from __future__ import annotations

from pathlib import Path

from binarynet.data.checks import PathLike, warn_if_not_official
from binarynet.data.cifar10_jpeg import read_jpeg_copy
from binarynet.data.cifar10_layout import CLASS_COUNT, OFFICIAL_SIZE, find_layout
from binarynet.data.cifar10_pickle import read_batches
from binarynet.data.splits import Split, Splits, split_last

__all__ = ["load_cifar10"]


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
    layout, root = find_layout(directory)
    if layout == "pickle":
        arrays = read_batches(root)
        name = "cifar10"
    else:
        arrays = read_jpeg_copy(root, None if cache_dir is None else Path(cache_dir))
        name = "cifar10-jpeg"
    for split, (images, _) in arrays.items():
        warn_if_not_official(len(images), OFFICIAL_SIZE[split], "CIFAR-10", split, root)
    train, valid = split_last(*arrays["train"], n_valid)
    test = Split(*arrays["test"])
    return Splits(train, valid, test, name=name, n_classes=CLASS_COUNT)
