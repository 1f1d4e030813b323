"""Binarizers, the straight-through estimator and AP2."""

import math

import pytest
import torch

from binarynet.training.quantize import ap2, ap2_scalar, ap2_ste, binarize, hard_sigmoid, sign


def test_sign_of_zero_is_plus_one():
    x = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 3.0, -2.5])
    assert sign(x).tolist() == [1.0, 1.0, 1.0, -1.0, 1.0, -1.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sign_in_narrow_dtype_keeps_every_sign(dtype):
    x = torch.tensor([1e-38, -1e-38, 0.0, -0.0, 7.0, -7.0])
    assert sign(x, out_dtype=dtype).dtype == dtype
    assert sign(x, out_dtype=dtype).float().tolist() == [1, -1, 1, 1, 1, -1]


@pytest.mark.parametrize("stochastic", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_ste_gradient_is_indicator_of_abs_le_one(stochastic, dtype):
    # Include the exact boundary ±1 and the first values past it in this dtype.
    eps = torch.finfo(dtype).eps
    special = torch.tensor([-1.0, 1.0, 1.0 + eps, -1.0 - eps, 0.0, -0.0, 0.999, -3.0, 3.0])
    x = torch.cat([special, torch.linspace(-2, 2, 401)]).to(dtype).requires_grad_()
    g_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    y = binarize(x, stochastic=stochastic, generator=torch.Generator().manual_seed(1))
    y.backward(g_out)
    expected = g_out * (x.detach().abs() <= 1).to(dtype)
    assert torch.equal(x.grad, expected)
    assert x.grad[0] == g_out[0] and x.grad[1] == g_out[1]  # |x| = 1 passes
    assert x.grad[2] == 0 and x.grad[3] == 0  # just past 1: cancelled


def test_ste_gradient_reaches_float32_input_from_bf16_output():
    x = torch.tensor([0.5, -2.0, 1.0], requires_grad=True)
    sign(x, out_dtype=torch.bfloat16).sum().backward()
    assert x.grad.dtype == torch.float32
    assert x.grad.tolist() == [1.0, 0.0, 1.0]


def test_stochastic_frequencies_match_hard_sigmoid():
    # 20 000 draws per value: the standard error of a frequency is at most 0.5/sqrt(20000) =
    # 0.0035; a 5-sigma band (0.018) makes a false failure essentially impossible while still
    # catching any wrong probability law (e.g. sigmoid instead of hard sigmoid differs by > 0.05
    # at x = 0.5).
    values = torch.tensor([-1.5, -1.0, -0.6, -0.2, 0.0, 0.3, 0.5, 0.9, 1.0, 2.0])
    n = 20_000
    x = values.repeat(n, 1)
    y = binarize(x, stochastic=True, generator=torch.Generator().manual_seed(1234))
    assert set(y.unique().tolist()) <= {-1.0, 1.0}
    freq = (y > 0).float().mean(0)
    p = hard_sigmoid(values)
    assert torch.all((freq - p).abs() <= 5 * 0.5 / math.sqrt(n))
    assert freq[0] == 0 and freq[-1] == 1  # saturated values are deterministic


def test_stochastic_is_reproducible_with_generator():
    x = torch.linspace(-1, 1, 1000)
    a = binarize(x, True, torch.Generator().manual_seed(7))
    b = binarize(x, True, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_ap2_exact_powers_of_two_with_sign():
    x = torch.tensor([3.0, -3.0, 0.75, 5.0, -6.0, 1.0, 0.0, 1e-3, -2.9, 2.8, 0.7, 0.71])
    # round(log2|x|): log2 3 = 1.58 → 2; log2 .75 = −.415 → 0; log2 5 = 2.32 → 2;
    # log2 6 = 2.58 → 3; log2 1e-3 = −9.97 → −10; log2 2.9 = 1.54 → 2; log2 2.8 = 1.49 → 1;
    # log2 .7 = −.515 → −1; log2 .71 = −.494 → 0.
    expected = [4.0, -4.0, 1.0, 4.0, -8.0, 1.0, 0.0, 2.0**-10, -4.0, 2.0, 0.5, 1.0]
    assert ap2(x).tolist() == expected
    m, _ = torch.frexp(ap2(x[x != 0]))
    assert torch.all(m.abs() == 0.5)  # mantissa 0.5: an exact power of two
    assert [ap2_scalar(v) for v in x.tolist()] == expected


def test_ap2_ste_passes_gradient_unchanged():
    x = torch.tensor([3.0, -0.3], requires_grad=True)
    y = ap2_ste(x)
    assert y.tolist() == [4.0, -0.25]
    (y * torch.tensor([2.0, 5.0])).sum().backward()
    assert x.grad.tolist() == [2.0, 5.0]


def test_sign_kernel_for_large_float32_tensors_equals_the_torch_formula():
    # Latent weights above the kernel threshold go through the compiled one-pass sign; the
    # values must be those of copysign(1, x + 0.0) everywhere, ±0, ±inf and signed NaNs included.
    from binarynet.training import quantize

    n = quantize._SIGN_KERNEL_MIN * 3 + 5
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, generator=gen)
    special = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), 1e-45, -1e-45])
    x[: len(special)] = special
    x[10] = float("nan")
    x[11] = -float("nan")
    expected = torch.copysign(torch.ones(()), x + 0.0)
    for threads in (1, 2):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            block = x[: 3 * (n // 3)].view(3, -1)[:, :-2].contiguous()  # a 2-D tensor
            got = sign(block).reshape(-1)
            full = sign(x)
        finally:
            torch.set_num_threads(previous)
        assert torch.equal(full.view(torch.int32), expected.view(torch.int32))
        want = expected[: 3 * (n // 3)].view(3, -1)[:, :-2].reshape(-1)
        assert torch.equal(got.view(torch.int32), want.view(torch.int32))
    assert full[0] == 1 and full[1] == 1  # sign(+0) = sign(−0) = +1
    # the STE still applies: gradient 1{|x| ≤ 1}
    w = (torch.rand(n, generator=gen) * 4 - 2).requires_grad_(True)
    sign(w).sum().backward()
    assert torch.equal(w.grad, (w.detach().abs() <= 1).float())
