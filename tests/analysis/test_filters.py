"""binarynet.analysis.filters: repetition counting on hand-built layers, sign flips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from binarynet.analysis.filters import (
    layer_repetitions,
    mean_repetitions,
    model_repetitions,
)
from binarynet.export import export
from binarynet.graph import bnnfile
from binarynet.training.models import cifar10_convnet, mnist_mlp

# Three 3×3 kernels (±1), written as rows.
A = np.array([[1, -1, 1], [1, 1, -1], [-1, 1, 1]])
B = np.array([[1, 1, 1], [-1, -1, 1], [1, -1, -1]])
C = np.array([[-1, -1, 1], [1, -1, 1], [1, 1, -1]])


def test_duplicates_and_negations():
    # Filters (2 input channels each): f0 = (A, B), f1 = f0, f2 = −f0, f3 = (A, C).
    w = np.stack([np.stack(f) for f in [(A, B), (A, B), (-A, -B), (A, C)]])
    r = layer_repetitions(w, "conv")
    assert r.shape == (4, 2, 3, 3)
    assert r.distinct_3d == 3  # f0 = f1
    assert r.distinct_3d_sign == 2  # and f2 = −f0
    # Channel 0: A, A, −A, A → 2 distinct, 1 up to sign; channel 1: B, B, −B, C → 3 and 2.
    assert r.distinct_2d == 2 + 3
    assert r.distinct_2d_sign == 1 + 2
    assert r.unique_3d == 3 / 4 and r.unique_3d_sign == 2 / 4
    assert r.unique_2d == 5 / 8 and r.unique_2d_sign == 3 / 8
    assert r.patterns_2d == 5  # A, −A, B, −B, C
    d = r.to_dict()
    assert d["shape"] == [4, 2, 3, 3] and d["unique_2d_sign"] == 3 / 8


def test_input_forms_agree_and_zero_is_positive():
    rng = np.random.default_rng(1)
    latent = rng.uniform(-1, 1, size=(6, 3, 3, 3)).astype(np.float32)
    latent[0, 0, 0, 0] = 0.0  # sign(0) = +1
    latent[1] = latent[0]
    latent[1, 0, 0, 0] = -0.0  # still +1: f1 = f0
    latent[2] = -latent[3]
    latent[2, 0, 0, 0], latent[3, 0, 0, 0] = 0.5, -0.5
    signs = np.where(latent < 0, -1, 1)
    a = layer_repetitions(latent)
    assert a == layer_repetitions(signs) == layer_repetitions(latent < 0)
    assert a.distinct_3d == 5 and a.distinct_3d_sign == 4


def test_all_equal_and_all_distinct():
    w = np.ones((5, 4, 3, 3))
    r = layer_repetitions(w)
    assert (r.distinct_3d, r.distinct_2d, r.distinct_2d_sign, r.patterns_2d) == (1, 4, 4, 1)
    # 512 distinct 3×3 kernels in one channel: every pattern once, 256 up to sign.
    codes = np.arange(512)
    kernels = ((codes[:, None] >> np.arange(9)) & 1).astype(bool).reshape(512, 1, 3, 3)
    r = layer_repetitions(kernels)
    assert (r.distinct_3d, r.distinct_2d, r.distinct_2d_sign) == (512, 512, 256)
    assert r.distinct_3d_sign == 256


def test_random_reference():
    r = layer_repetitions(np.ones((2, 1, 3, 3)))
    n = 256
    assert r.random_2d_sign == pytest.approx(n * (1 - (1 - 1 / n) ** 2) / 2)
    assert layer_repetitions(np.ones((1, 1, 1, 1))).random_2d_sign == 1.0
    big = layer_repetitions(np.random.default_rng(0).standard_normal((512, 64, 3, 3)))
    assert big.unique_2d_sign == pytest.approx(big.random_2d_sign, abs=0.01)


def test_mean_over_layers():
    a = layer_repetitions(np.ones((2, 1, 3, 3)))
    b = layer_repetitions(np.stack([np.ones((1, 3, 3)), -np.ones((1, 3, 3))]))
    m = mean_repetitions([a, b])
    assert m["unique_3d"] == (0.5 + 1.0) / 2 and m["unique_3d_sign"] == 0.5
    assert mean_repetitions([]) == {}


def test_errors():
    with pytest.raises(ValueError, match="4-D"):
        layer_repetitions(np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="finite"):
        layer_repetitions(np.full((1, 1, 3, 3), np.nan))
    with pytest.raises(TypeError, match="list"):
        model_repetitions([1, 2])


def test_torch_and_bnn_agree(tmp_path):
    torch.manual_seed(0)
    model = cifar10_convnet(width=1 / 16, fc_width=32).eval()
    path = tmp_path / "m.bnn"
    export(model, path, input_shape=(3, 32, 32))
    from_torch = model_repetitions(model)
    from_file = model_repetitions(path)
    assert (
        [r.name for r in from_torch]
        == [r.name for r in from_file]
        == [
            "1",
            "4",
            "8",
            "11",
            "15",
            "18",
        ]
    )
    assert from_torch == from_file == model_repetitions(bnnfile.load(path))
    assert model_repetitions(mnist_mlp(8, 1)) == []
