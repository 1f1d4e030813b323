"""Checks shared by every dataset reader: image and label arrays, their counts, and the two
warnings a reader may give (a file of unofficial size, arrays that differ from a checksum).

Every check names the file it looked at, so that a damaged dataset is reported as
"``path``: what is wrong", whichever format it came in.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

__all__ = [
    "ChecksumWarning",
    "DatasetSizeWarning",
    "PathLike",
    "check_images",
    "check_labels",
    "check_same_count",
    "warn_if_not_official",
]

PathLike = str | os.PathLike[str]


class DatasetSizeWarning(UserWarning):
    """A dataset file holds a number of examples other than the official one (a subset?)."""


class ChecksumWarning(UserWarning):
    """Arrays differ from a recorded checksum: a stale cache, or a JPEG decoder that decodes
    differently from the one the reference checksums were made with."""


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


def warn_if_not_official(n: int, official: int, dataset: str, split: str, where: PathLike) -> None:
    """Warn (:class:`DatasetSizeWarning`) when ``where`` holds ``n`` images of ``dataset``'s
    ``split`` where the official set has ``official``: a subset works, but its results are not
    comparable with the paper's.

    Call it from the public loader itself: the warning points at the loader's caller.
    """
    if n != official:
        warnings.warn(
            f"{where} holds {n} images; the official {dataset} {split} set has {official}. "
            "Using it as given (a subset?); results are not comparable with the paper's.",
            DatasetSizeWarning,
            stacklevel=3,
        )
