"""binarynet.training.fixed_point: the fake quantizer's forward (the deployed integers), its
straight-through gradient, and that torch's eval forward of a binary layer's batch norm through
it equals the integer requantization of binarynet.graph.requantize."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from binarynet.graph.requantize import requantize
from binarynet.training.fixed_point import FixedPoint, fake_quantize
from binarynet.training.nn import ExactBatchNorm1d


def test_forward_is_the_grid_with_ties_to_even_and_saturation():
    step = 2.0**-4
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 127.4, 127.6, -128.6, 1000.0]) * step
    q = fake_quantize(x, -4) / step
    assert q.tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, 127.0, 127.0, -128.0, 127.0]
    assert fake_quantize(torch.tensor([40000.0]), 0, bits=16).item() == 32767


def test_gradient_passes_inside_and_stops_where_the_stream_saturates():
    x = torch.tensor([0.3, 127.5, 127.51, -128.5, -128.51, 5.0], requires_grad=True)
    fake_quantize(x, 0).mul(torch.arange(1.0, 7.0)).sum().backward()
    assert x.grad is not None
    assert x.grad.tolist() == [1.0, 2.0, 0.0, 4.0, 0.0, 6.0]


def test_module_checks_its_arguments():
    assert FixedPoint(-5).step == 2.0**-5
    assert "bits=16, exponent=-3" in repr(FixedPoint(-3, bits=16))
    with pytest.raises(ValueError, match="bits must be 8 or 16, got 12"):
        FixedPoint(-4, bits=12)
    with pytest.raises(ValueError, match=r"exponent must be an integer in -30\.\.30, got 1\.5"):
        FixedPoint(1.5)  # type: ignore[arg-type]


def test_eval_forward_equals_the_integer_requantization():
    """A binary layer's integers y → batch norm (eval) → int8 stream: torch and the integer map
    agree on every reachable y, for random statistics with γ < 0 and γ = 0 among them."""
    torch.manual_seed(0)
    c, bound = 24, 1152  # a 3×3 conv over 128 channels
    bn = ExactBatchNorm1d(c)
    with torch.no_grad():
        bn.running_mean.normal_(0, 30)
        bn.running_var.uniform_(100, 3000)
        bn.weight.normal_()
        bn.weight[:3] = 0.0
        bn.bias.normal_()
    bn.eval()
    quant = FixedPoint(-3)
    y = torch.arange(-bound, bound + 1, dtype=torch.float32)[:, None].repeat(1, c)
    with torch.no_grad():
        torch_q = (quant(bn(y)) / quant.step).to(torch.int32).numpy()
        scale, shift = (t.numpy() for t in bn.eval_affine())
    r = requantize(bound, 1.0, None, scale, shift, quant.exponent)
    np.testing.assert_array_equal(r(y.numpy().astype(np.int64)), torch_q)
