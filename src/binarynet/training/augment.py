"""Training-time augmentation: random translations (crops of the zero-padded image) and
horizontal flips of the network's uint8 input.

Unlike the preprocessors of :mod:`binarynet.data.preprocess`, augmentation is never deployed: it is
drawn afresh for each training batch, and evaluation, export and the engine never see it. The
paper trains without augmentation; ``binarynet train --augment`` turns it on.

It applies to the uint8 images that reach the network (after preprocessing), NHWC
``[N, H, W, C]`` or ``[N, H, W]``. Padding uses the uint8 128 by default, the value that stands
for 0 in the network's input x = (p − 128)·2⁻⁷, so a shifted image is zero-padded as the
convolutions see it. NumPy-only.
"""

from __future__ import annotations

import numpy as np

from binarynet.data.preprocess import ZERO_POINT, check_uint8_images

__all__ = ["augment", "crop_flip"]


def augment(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    pad: int = 4,
    flip: bool = True,
    fill: int = ZERO_POINT,
) -> np.ndarray:
    """Random translation (a crop of the image padded by ``pad`` pixels) and horizontal flip,
    drawn independently for each image from ``rng``: offsets uniform in 0..2·pad, flip with
    probability 1/2. The paper trains without augmentation; this is off unless asked for.

    Apply it to the network's uint8 input (after preprocessing). The padding value ``fill``
    defaults to 128, the uint8 that stands for 0 in the network's input (x = (p − 128)·2⁻⁷),
    i.e. zero padding as the convolutions see it.

    Returns:
        a new uint8 array of the shape of ``images`` (``[N, H, W, C]`` or ``[N, H, W]``).
    """
    images = check_uint8_images(images, "augment")
    n = len(images)
    _check_pad(pad)
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)
    return crop_flip(images, dy, dx, flips, pad=pad, fill=fill)


def crop_flip(
    images: np.ndarray,
    dy: np.ndarray,
    dx: np.ndarray,
    flips: np.ndarray,
    *,
    pad: int = 4,
    fill: int = ZERO_POINT,
) -> np.ndarray:
    """The deterministic part of :func:`augment`: with X the image padded by ``pad`` pixels of
    value ``fill`` on each side, out[i, r, c] = X[i, dy[i] + r, dx[i] + c], or
    X[i, dy[i] + r, dx[i] + W − 1 − c] where ``flips[i]``. ``dy = dx = pad`` is no shift.
    """
    images = check_uint8_images(images, "crop_flip")
    _check_pad(pad)
    if not (isinstance(fill, int | np.integer) and 0 <= fill <= 255):
        raise ValueError(f"fill must be a uint8 value 0..255, got {fill!r}")
    n, h, w = images.shape[:3]
    dy, dx, flips = np.asarray(dy), np.asarray(dx), np.asarray(flips, dtype=bool)
    for name, offsets in (("dy", dy), ("dx", dx)):
        if offsets.shape != (n,) or offsets.dtype.kind not in "ui":
            raise ValueError(
                f"{name} must be {n} integer offsets, got {offsets.dtype} {offsets.shape}"
            )
        if offsets.size and not (offsets.min() >= 0 and offsets.max() <= 2 * pad):
            raise ValueError(f"{name} offsets must be in 0..{2 * pad}")
    if flips.shape != (n,):
        raise ValueError(f"flips must have shape ({n},), got {flips.shape}")
    widths = [(0, 0), (pad, pad), (pad, pad)] + [(0, 0)] * (images.ndim - 3)
    padded = np.pad(images, widths, constant_values=fill)
    rows = dy[:, None] + np.arange(h)
    cols = dx[:, None] + np.where(flips[:, None], np.arange(w)[::-1], np.arange(w))
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _check_pad(pad: int) -> None:
    if isinstance(pad, bool) or not isinstance(pad, int | np.integer) or pad < 0:
        raise ValueError(f"pad must be a non-negative int, got {pad!r}")
