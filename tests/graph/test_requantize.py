"""binarynet.graph.requantize: the integer map equals torch's float32 batch norm + rounding on
every reachable integer, for ties, γ < 0, γ = 0 and saturation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binarynet.graph.requantize import fixed_point_range, requantize, requantize_reference
from binarynet.graph.values import GraphError


def _check(bound, input_scale, bias, scale, shift, exponent, bits):
    r = requantize(bound, input_scale, bias, scale, shift, exponent, bits)
    ys = np.arange(-bound, bound + 1)[:, None].repeat(scale.shape[0], axis=1)
    expected = requantize_reference(ys, input_scale, bias, scale, shift, exponent, bits)
    np.testing.assert_array_equal(r(ys), expected)
    return r, expected


def test_ties_round_half_to_even():
    # f(y) = y / 2 on a grid of step 1: odd y land exactly on .5 and go to the even neighbour.
    scale = np.array([0.5], np.float32)
    r, q = _check(9, 1.0, None, scale, np.zeros(1, np.float32), 0, 8)
    assert list(q[:, 0]) == [-4, -4, -4, -3, -2, -2, -2, -1, 0, 0, 0, 1, 2, 2, 2, 3, 4, 4, 4]
    # widths 3, 1, 3, 1: no floor of an affine map; the channel is given by its steps
    assert [s.channel for s in r.steps] == [0]


def test_negative_zero_and_saturating_channels():
    scale = np.array([-0.37, 0.0, 3.0e3, 1e-9], np.float32)
    shift = np.array([0.25, -1.5, 0.0, 0.5], np.float32)
    r, q = _check(300, 2.0**-7, None, scale, shift, -4, 8)
    assert np.all(np.diff(q[:, 0]) <= 0)  # γ < 0: non-increasing
    assert np.all(q[:, 1] == q[0, 1])  # γ = 0: the constant rne(shift·16)
    assert q[0, 2] == -128 and q[-1, 2] == 127  # saturated both ways
    assert r.multiplier[1] == 0


def test_bias_and_int16():
    rng = np.random.default_rng(3)
    scale = rng.normal(size=16).astype(np.float32)
    shift = rng.normal(size=16).astype(np.float32)
    bias = rng.normal(size=16).astype(np.float32)
    r, _ = _check(2304, 1.0, bias, scale, shift, -8, 16)
    assert not r.steps  # trained statistics: every channel is a multiplier, an offset, a shift


@settings(max_examples=60, deadline=None)
@given(
    bound=st.integers(1, 3000),
    input_scale=st.sampled_from([1.0, 2.0**-7]),
    exponent=st.integers(-8, 2),
    bits=st.sampled_from([8, 16]),
    seed=st.integers(0, 2**31),
)
def test_random_channels_are_exact_on_every_reachable_integer(
    bound, input_scale, exponent, bits, seed
):
    rng = np.random.default_rng(seed)
    c = 5
    scale = (rng.normal(size=c) * 10.0 ** rng.uniform(-4, 1, c)).astype(np.float32)
    scale[rng.random(c) < 0.2] = 0.0
    shift = (rng.normal(size=c) * 10.0 ** rng.uniform(-2, 2, c)).astype(np.float32)
    bias = rng.normal(size=c).astype(np.float32) if rng.random() < 0.5 else None
    _check(bound, input_scale, bias, scale, shift, exponent, bits)


def test_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="8 or 16 bits, got 4"):
        fixed_point_range(4)
    one = np.ones(1, np.float32)
    with pytest.raises(GraphError, match="reachable bound 16777216 is outside"):
        requantize(1 << 24, 1.0, None, one, one, 0)
    with pytest.raises(GraphError, match="channel 0: the batch norm's scale is not finite"):
        requantize(10, 1.0, None, np.array([np.inf], np.float32), one, 0)
