"""binarynet.training.sign_flips: the signs of the latent weights and their flips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from binarynet.training.models import mnist_mlp
from binarynet.training.sign_flips import latent_signs, sign_flip_fractions


def test_sign_flips():
    torch.manual_seed(0)
    model = mnist_mlp(hidden=8, depth=1, in_features=16)
    before = latent_signs(model)
    assert sorted(before) == ["2", "5"]
    assert before["2"].shape == (8, 16) and before["2"].dtype == bool
    with torch.no_grad():
        model[2].weight[:2].neg_()  # flip 2 rows of 16: 32 of 128 signs (no exact zeros)
    flips = sign_flip_fractions(before, latent_signs(model))
    assert flips == {"2": 32 / 128, "5": 0.0}
    with pytest.raises(ValueError, match="different layers"):
        sign_flip_fractions(before, {"2": before["2"]})
    with pytest.raises(ValueError, match="shapes differ"):
        sign_flip_fractions({"a": np.zeros(3, bool)}, {"a": np.zeros(4, bool)})
    assert math.isclose(sum(flips.values()), 0.25)
