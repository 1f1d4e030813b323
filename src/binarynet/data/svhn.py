"""SVHN (Netzer et al. 2011), the cropped digits ("format 2"), from its MATLAB files, with the
class-balanced validation split of Sermanet et al. (2012) that BinaryNet's Theano code used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from binarynet.data.checks import PathLike, warn_if_not_official
from binarynet.data.splits import Split, Splits, class_balance

__all__ = ["SVHN_FILES", "SVHN_URL", "load_svhn"]

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
        warn_if_not_official(len(labels), _SVHN_OFFICIAL_SIZE[split], "SVHN", split, path)
        sources.append((raw, labels, _per_class_holdout(labels, per_class, rng, path)))
    train = _gather_svhn([(x, y, ~mask) for x, y, mask in sources])
    valid = _gather_svhn([(x, y, mask) for x, y, mask in sources])
    del sources
    test_path = directory / SVHN_FILES["test"]
    raw, labels = _read_svhn_mat(test_path)
    warn_if_not_official(len(labels), _SVHN_OFFICIAL_SIZE["test"], "SVHN", "test", test_path)
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
