"""What every loader returns: a :class:`Splits` of three :class:`Split` objects (train, valid,
test), and the two ways of looking at them that every dataset shares: holding out the last
examples for validation (:func:`split_last`) and counting classes (:func:`class_balance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "Splits", "class_balance", "split_last"]


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
