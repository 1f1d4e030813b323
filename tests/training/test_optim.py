"""Shift-based AdaMax (Algorithm 4), Glorot learning-rate scales, clipping."""

import io
import math

import pytest
import torch
from torch import nn

from binarynet.training.models import mnist_mlp
from binarynet.training.nn import BinaryConv2d, BinaryLinear, clip_weights_
from binarynet.training.optim import ShiftAdaMax, glorot_lr_scale, param_groups


def test_defaults_are_the_papers():
    opt = ShiftAdaMax([torch.zeros(1, requires_grad=True)])
    assert opt.defaults["lr"] == 2.0**-10
    assert opt.defaults["betas"] == (1 - 2.0**-3, 1 - 2.0**-10)


def test_shift_adamax_two_hand_computed_steps():
    theta = torch.tensor([0.5, -0.25, 0.0], dtype=torch.float64, requires_grad=True)
    opt = ShiftAdaMax([theta])
    # step 1, g = [0.1, −0.02, 0]: m = g/8 = [0.0125, −0.0025, 0]; v = |g|;
    # step size AP2(2⁻¹⁰ / (1 − 7/8)) = 2⁻⁷; AP2(v) = [2⁻³, 2⁻⁶, ε];
    # Δθ = −2⁻⁷ · m / AP2(v) = −[0.00078125, −0.00125, 0]
    theta.grad = torch.tensor([0.1, -0.02, 0.0], dtype=torch.float64)
    opt.step()
    expected = [0.5 - 0.00078125, -0.25 + 0.00125, 0.0]
    assert theta.tolist() == pytest.approx(expected, abs=1e-15)
    # step 2, g = [−0.05, 0.03, 0]: m = 7/8·m + g/8 = [0.0046875, 0.0015625, 0];
    # v = max(β₂·v, |g|) = [0.1·(1 − 2⁻¹⁰), 0.03, 0] → AP2(v) = [2⁻³, 2⁻⁵, ε];
    # step size AP2(2⁻¹⁰ / (1 − (7/8)²)) = AP2(0.0041667) = 2⁻⁸;
    # Δθ = −2⁻⁸ · [0.0375, 0.05, 0]
    theta.grad = torch.tensor([-0.05, 0.03, 0.0], dtype=torch.float64)
    opt.step()
    expected = [expected[0] - 2**-8 * 0.0375, expected[1] - 2**-8 * 0.05, 0.0]
    assert theta.tolist() == pytest.approx(expected, abs=1e-15)
    state = opt.state[theta]
    assert state["exp_inf"].tolist() == pytest.approx([0.1 * (1 - 2**-10), 0.03, 0.0])
    assert state["step"].item() == 2


def test_update_magnitudes_are_powers_of_two_times_m():
    torch.manual_seed(0)
    p = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    opt = ShiftAdaMax([p], lr=0.01)
    for _ in range(3):
        p.grad = torch.randn(1000, dtype=torch.float64)
        before = p.detach().clone()
        opt.step()
        # step_size / AP2(v) is a power of two: each update is m shifted by an integer amount
        log_ratio = torch.log2((before - p.detach()) / opt.state[p]["exp_avg"])
        assert torch.allclose(log_ratio, log_ratio.round(), atol=1e-6)


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    model_a = nn.Linear(5, 3)
    model_b = nn.Linear(5, 3)
    model_b.load_state_dict(model_a.state_dict())
    opt_a = ShiftAdaMax(model_a.parameters(), lr=0.01)
    data = [torch.randn(4, 5) for _ in range(5)]

    def step(model, opt, x):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()

    for x in data[:3]:
        step(model_a, opt_a, x)
    model_b.load_state_dict(model_a.state_dict())
    opt_b = ShiftAdaMax(model_b.parameters(), lr=0.5)  # lr comes from the state dict
    buffer = io.BytesIO()
    torch.save(opt_a.state_dict(), buffer)
    buffer.seek(0)
    opt_b.load_state_dict(torch.load(buffer, weights_only=True))
    assert opt_b.param_groups[0]["lr"] == 0.01
    for x in data[3:]:
        step(model_a, opt_a, x)
        step(model_b, opt_b, x)
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": -1.0}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"betas": (1.0, 0.5)}, "betas"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShiftAdaMax([torch.zeros(1, requires_grad=True)], **kwargs)


def test_glorot_scales():
    dense = BinaryLinear(784, 2048)
    assert glorot_lr_scale(dense) == pytest.approx(1 / math.sqrt(1.5 / (784 + 2048)))
    assert glorot_lr_scale(dense, pow2=True) == 32.0  # 43.45 → 2^5
    conv = BinaryConv2d(128, 256, 3)  # fan_in 9·128, fan_out 9·256
    assert glorot_lr_scale(conv) == pytest.approx(1 / math.sqrt(1.5 / (1152 + 2304)))
    assert glorot_lr_scale(conv, pow2=True) == 64.0  # 48 → 2^round(5.58)


def test_param_groups_cover_every_parameter_once():
    model = mnist_mlp(hidden=32, depth=2)
    groups = param_groups(model, lr=0.01, pow2=True)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert groups[0]["lr"] == 0.01 * glorot_lr_scale(model[2], pow2=True)
    assert groups[-1]["name"] == "other" and groups[-1]["lr"] == 0.01


@pytest.mark.parametrize("opt_name", ["shift-adamax", "adam"])
def test_latent_weights_stay_in_unit_interval_after_every_step(opt_name):
    torch.manual_seed(0)
    model = mnist_mlp(hidden=32, depth=2)
    groups = param_groups(model, lr=0.05)  # a large LR pushes weights past ±1 quickly
    opt = ShiftAdaMax(groups) if opt_name == "shift-adamax" else torch.optim.Adam(groups)
    x = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (64,))
    from binarynet.training.losses import square_hinge_loss

    saturated = 0
    for _ in range(15):
        opt.zero_grad()
        square_hinge_loss(model(x), y).backward()
        opt.step()
        clip_weights_(model)
        for layer in (model[2], model[5], model[8]):
            assert layer.weight.abs().max() <= 1.0
            saturated += int((layer.weight.abs() == 1.0).sum())
    assert saturated > 0  # the clip was actually exercised


def _run_shift_adamax(fused, params, grads, **kwargs):
    params = [p.detach().clone().requires_grad_(True) for p in params]
    opt = ShiftAdaMax(params, fused=fused, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g.clone()
        opt.step()
    return params, opt


def _grad_steps(shapes, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for t in range(steps):
        step = []
        for shape in shapes:
            scale = 10.0 ** int(torch.randint(-6, 2, (), generator=gen))
            g = torch.randn(shape, generator=gen) * scale
            flat = g.view(-1)
            flat[:3] = 0.0  # elements whose gradient is zero (v stays below ε)
            if t == 2:
                flat[3:4] = 1e-30  # tiny gradients: v of order 1e-30 against ε = 2⁻⁴⁰
            step.append(g)
        out.append(step)
    return out


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_kernel_equals_torch_operations_bit_for_bit(maximize, threads):
    # The compiled one-pass update rounds exactly as the torch operations it replaces.
    shapes = [(300, 257), (70_001,), (4, 3, 3, 3), (0,), (1,)]
    gen = torch.Generator().manual_seed(1)
    params = [torch.rand(s, generator=gen) * 2 - 1 for s in shapes]
    grads = _grad_steps(shapes, 6)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ref, ref_opt = _run_shift_adamax(False, params, grads, lr=2.0**-6, maximize=maximize)
        got, got_opt = _run_shift_adamax(True, params, grads, lr=2.0**-6, maximize=maximize)
    finally:
        torch.set_num_threads(previous)
    for a, b, pa, pb in zip(ref, got, ref_opt.state.values(), got_opt.state.values(), strict=True):
        assert torch.equal(a, b)
        assert torch.equal(pa["exp_avg"], pb["exp_avg"])
        assert torch.equal(pa["exp_inf"], pb["exp_inf"])
    assert any(
        not torch.equal(p, q) for p, q in zip(params, got, strict=True)
    )  # the step did something


def test_fused_kernel_with_other_betas():
    # 1 − β₁ not a power of two: the kernel uses fma as torch.lerp's vector path does; torch's
    # scalar tail may round the last element differently, so allow one ulp.
    shapes = [(1000,), (333,)]
    params = [torch.rand(s) * 2 - 1 for s in shapes]
    grads = _grad_steps(shapes, 4, seed=3)
    for betas in [(0.9, 0.999), (0.3, 0.5)]:
        ref, _ = _run_shift_adamax(False, params, grads, betas=betas)
        got, _ = _run_shift_adamax(True, params, grads, betas=betas)
        for a, b in zip(ref, got, strict=True):
            torch.testing.assert_close(a, b, rtol=2**-22, atol=1e-30)


def test_fused_default_uses_kernel_on_cpu_float32_and_torch_otherwise(monkeypatch):
    from binarynet import _kernels

    calls = []
    kernel = _kernels.shift_adamax_step
    monkeypatch.setattr(
        _kernels, "shift_adamax_step", lambda *a, **k: calls.append(a[0].dtype) or kernel(*a, **k)
    )
    p32 = torch.zeros(10, requires_grad=True)
    p64 = torch.zeros(10, dtype=torch.float64, requires_grad=True)
    opt = ShiftAdaMax([p32, p64])  # fused=None: the kernel for p32, torch operations for p64
    p32.grad = torch.ones(10)
    p64.grad = torch.ones(10, dtype=torch.float64)
    opt.step()
    assert torch.equal(p32.detach(), p64.detach().float())
    assert calls == [p32.detach().numpy().dtype]  # one call, for the float32 parameter
    assert p32.detach()[0] == -(2.0**-10)  # −AP2(2⁻¹⁰ / (1 − 7/8)) · m / AP2(v), m = 1/8, v = 1
    with pytest.raises(ValueError, match=r"float32 CPU parameters.*float64"):
        strict = ShiftAdaMax([p64], fused=True)
        p64.grad = torch.ones(10, dtype=torch.float64)
        strict.step()
    with pytest.raises(ValueError, match="fused must be None, True or False"):
        ShiftAdaMax([p32], fused="yes")


def test_fused_step_bumps_the_autograd_version():
    # A graph that saved p before the step must notice that p changed, as with torch's in-place ops.
    p = torch.ones(4, requires_grad=True)
    opt = ShiftAdaMax([p], fused=True)
    loss = (p * p).sum()
    p.grad = torch.ones(4)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_fused_kernel_argument_errors():
    from binarynet import _kernels

    a = torch.zeros(8).numpy()
    good = dict(one_minus_beta1=0.125, beta2=0.999, eps=1e-8, step=0.01)
    with pytest.raises(ValueError, match="grad must have 8 elements"):
        _kernels.shift_adamax_step(a, torch.zeros(7).numpy(), a.copy(), a.copy(), **good)
    with pytest.raises(ValueError, match="must not overlap"):
        _kernels.shift_adamax_step(a, a.copy(), a, a.copy(), **good)
    with pytest.raises(ValueError, match="exp_inf must be contiguous"):
        big = torch.zeros(16).numpy()
        _kernels.shift_adamax_step(a, a.copy(), a.copy(), big[::2], **good)
    with pytest.raises(ValueError, match="beta2 must be in"):
        _kernels.shift_adamax_step(a, a.copy(), a.copy(), a.copy(), **{**good, "beta2": 1.0})
