"""Tests of binarynet.training.augment: random crops of the padded image and horizontal flips. All
on synthetic data (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from binarynet.training.augment import augment, crop_flip


def random_images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Uniformly random uint8 images ``[n, *shape]``."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def test_augment_preserves_shape_and_dtype() -> None:
    images = random_images(64, shape=(8, 8, 3))
    out = augment(images, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == images.shape
    assert not np.shares_memory(out, images)
    grey = images[..., 0]
    assert augment(grey, np.random.default_rng(0)).shape == grey.shape


def test_flip_is_exact() -> None:
    images = random_images(5, shape=(8, 8, 3))
    pad = np.full(5, 4)
    out = crop_flip(images, pad, pad, np.ones(5, dtype=bool))
    np.testing.assert_array_equal(out, images[:, :, ::-1])
    np.testing.assert_array_equal(crop_flip(images, pad, pad, np.zeros(5, dtype=bool)), images)


def test_crop_of_padded_image_is_a_shift() -> None:
    images = random_images(3, shape=(8, 8, 3))
    dy, dx = np.array([5, 4, 0]), np.array([2, 8, 4])  # shifts (+1, −2), (0, +4), (−4, 0)
    out = crop_flip(images, dy, dx, np.zeros(3, dtype=bool), pad=4, fill=128)
    for i in range(3):
        sy, sx = dy[i] - 4, dx[i] - 4
        for r in range(8):
            for c in range(8):
                src_r, src_c = r + sy, c + sx
                inside = 0 <= src_r < 8 and 0 <= src_c < 8
                want = images[i, src_r, src_c] if inside else np.full(3, 128)
                np.testing.assert_array_equal(out[i, r, c], want)


def test_crop_and_flip_compose() -> None:
    images = random_images(2, shape=(8, 8, 3))
    dy, dx = np.array([6, 1]), np.array([3, 7])
    flips = np.ones(2, dtype=bool)
    crop = crop_flip(images, dy, dx, ~flips, fill=0)
    np.testing.assert_array_equal(crop_flip(images, dy, dx, flips, fill=0), crop[:, :, ::-1])


def test_augment_draws_every_offset_and_both_flips() -> None:
    rng = np.random.default_rng(1)
    images = np.zeros((2000, 4, 4, 1), dtype=np.uint8)
    images[:, 0, 0, 0] = 255  # a marker pixel in the top-left corner
    out = augment(images, rng, pad=1, fill=0)
    rows, cols = np.nonzero(out[..., 0] == 255)[1:]
    # the marker ends up in rows/cols 0..1 (shifted by −1, 0, +1; −1 pushes it out), and
    # flipped images mirror its column to 3 − col
    assert set(rows) <= {0, 1} and set(cols) <= {0, 1, 2, 3}
    visible = np.any(out[..., 0] == 255, axis=(1, 2))
    assert 0.35 < visible.mean() < 0.55  # 4/9 of the offsets keep the corner pixel in view
    flipped = np.isin(cols, [2, 3])
    assert 0.4 < flipped.mean() < 0.6
    again = augment(images, np.random.default_rng(1), pad=1, fill=0)
    np.testing.assert_array_equal(out, again)  # a pure function of images and the generator


def test_augment_without_padding_or_flip_is_identity() -> None:
    images = random_images(4, shape=(8, 8, 3))
    np.testing.assert_array_equal(
        augment(images, np.random.default_rng(0), pad=0, flip=False), images
    )


def test_augment_errors() -> None:
    images = random_images(2, shape=(8, 8, 3))
    with pytest.raises(ValueError, match=r"dx offsets must be in 0\.\.8"):
        crop_flip(images, np.array([0, 0]), np.array([0, 9]), np.zeros(2, dtype=bool))
    with pytest.raises(ValueError, match="fill must be a uint8 value"):
        crop_flip(images, np.array([0, 0]), np.array([0, 0]), np.zeros(2, dtype=bool), fill=300)
    with pytest.raises(ValueError, match="pad must be a non-negative int"):
        augment(images, np.random.default_rng(0), pad=-1)
    with pytest.raises(ValueError, match="uint8"):
        augment(images.astype(np.float32), np.random.default_rng(0))
