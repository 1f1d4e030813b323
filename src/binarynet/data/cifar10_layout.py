"""What a CIFAR-10 folder holds, in either of its two layouts, and which layout a folder is in.

- The standard python version: the pickled batches :data:`CIFAR10_BATCHES` in a
  ``cifar-10-batches-py`` folder (read by :mod:`binarynet.data.cifar10_pickle`).
- The JPEG copy: ``index.csv`` beside :data:`CIFAR10_JPEG_ARCHIVE` or beside its extracted
  ``train/`` and ``test/`` folders (read by :mod:`binarynet.data.cifar10_jpeg`).

Both readers share the facts below: 32×32 RGB images, 10 classes, 50 000 training and 10 000
test images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = [
    "CIFAR10_BATCHES",
    "CIFAR10_CLASSES",
    "CIFAR10_JPEG_ARCHIVE",
    "find_layout",
]

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


IMAGE_SHAPE = (32, 32, 3)
"""One image, ``[H, W, C]`` (RGB)."""
CLASS_COUNT = 10
OFFICIAL_SIZE = {"train": 50_000, "test": 10_000}
"""Images in the official training and test sets."""
INDEX_NAME = "index.csv"
"""The JPEG copy's list of images: ``split,index,label,path``."""
_PICKLE_DIR = "cifar-10-batches-py"
EXPECTED_LAYOUTS = (
    "Expected either the standard python batches (data_batch_1 … data_batch_5 and test_batch: "
    "the cifar-10-batches-py folder or its parent) or the JPEG copy (index.csv beside "
    f"{CIFAR10_JPEG_ARCHIVE} or beside its extracted train/ and test/ folders)"
)
"""The end of every "no CIFAR-10 here" message."""


def find_layout(directory: Path) -> tuple[Literal["pickle", "jpeg"], Path]:
    """``("pickle", folder with the batches)`` or ``("jpeg", folder with index.csv)``.

    Raises:
        FileNotFoundError: ``directory`` does not exist, holds only some of the batches (the
            message lists the missing ones), or holds neither layout.
    """
    if not directory.is_dir():
        raise FileNotFoundError(f"CIFAR-10 directory not found: {directory}. {EXPECTED_LAYOUTS}.")
    for candidate in (directory, directory / _PICKLE_DIR):
        present = [b for b in CIFAR10_BATCHES if (candidate / b).is_file()]
        if present:
            missing = [b for b in CIFAR10_BATCHES if b not in present]
            if missing:
                raise FileNotFoundError(
                    f"CIFAR-10 batches missing in {candidate}: {', '.join(missing)}. Expected "
                    f"all of {', '.join(CIFAR10_BATCHES)}."
                )
            return "pickle", candidate
    if (directory / INDEX_NAME).is_file():
        return "jpeg", directory
    raise FileNotFoundError(f"no CIFAR-10 data in {directory}. {EXPECTED_LAYOUTS}.")
