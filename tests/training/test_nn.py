"""Binary layers, activations, fixed-point input and (shift-based) batch norm."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from binarynet.training.nn import (
    BinaryActivation,
    BinaryConv2d,
    BinaryLinear,
    ExactBatchNorm1d,
    ExactBatchNorm2d,
    FixedPointInput,
    ShiftBatchNorm1d,
    ShiftBatchNorm2d,
    clip_weights_,
    set_compute_dtype,
)
from binarynet.training.quantize import ap2


def pm1(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, shape, generator=g).float() * 2 - 1


def test_latent_weights_initialised_in_unit_interval():
    layer = BinaryLinear(300, 200)
    assert layer.weight.min() >= -1 and layer.weight.max() <= 1
    assert layer.weight.std() > 0.5  # uniform on [−1, 1] has std 0.577, not a tiny Glorot range
    conv = BinaryConv2d(16, 8, 3)
    assert conv.weight.abs().max() <= 1 and conv.bias is None


def test_binary_linear_forward_and_weight_gradient():
    layer = BinaryLinear(70, 5, binarize_input=False)
    x = pm1(4, 70)
    y = layer(x)
    w_b = torch.where(layer.weight >= 0, 1.0, -1.0)
    assert torch.equal(y, x @ w_b.T)
    g = torch.randn(4, 5)
    y.backward(g)
    # STE: ∂L/∂W = ∂L/∂W_b (all |W| ≤ 1) = gᵀ x
    assert torch.allclose(layer.weight.grad, g.T @ x, atol=1e-5)


def test_binarize_input_flag():
    torch.manual_seed(0)
    layer = BinaryLinear(6, 3, binarize_input=True)
    x = torch.tensor([[0.3, -0.2, 0.0, 2.0, -5.0, 0.9]], requires_grad=True)
    y = layer(x)
    w_b = torch.where(layer.weight >= 0, 1.0, -1.0)
    x_b = torch.tensor([[1.0, -1.0, 1.0, 1.0, -1.0, 1.0]])
    assert torch.equal(y, x_b @ w_b.T)
    y.sum().backward()
    mask = torch.tensor([1.0, 1, 1, 0, 0, 1])  # the STE cancels |x| > 1
    assert torch.equal(x.grad[0], w_b.sum(0) * mask)


def test_binary_conv_matches_torch_conv_with_zero_padding():
    conv = BinaryConv2d(3, 4, 3, stride=2, padding=1, binarize_input=False)
    x = pm1(2, 3, 7, 5)
    w_b = torch.where(conv.weight >= 0, 1.0, -1.0)
    assert torch.equal(conv(x), F.conv2d(x, w_b, stride=2, padding=1))


def test_bias_is_a_separate_add():
    layer = BinaryLinear(8, 2, bias=True, binarize_input=False)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.1, -0.3]))
    x = pm1(3, 8)
    w_b = torch.where(layer.weight >= 0, 1.0, -1.0)
    assert torch.equal(layer(x), (x @ w_b.T) + layer.bias)


@pytest.mark.parametrize(
    "layer_factory",
    [
        lambda: BinaryLinear(256, 32, binarize_input=False),
        lambda: BinaryConv2d(16, 8, 3, padding=1, binarize_input=False),
    ],
)
def test_bfloat16_compute_is_exact_on_binary_operands(layer_factory):
    layer = layer_factory()
    x = pm1(4, 256) if isinstance(layer, BinaryLinear) else pm1(2, 16, 6, 6)
    set_compute_dtype(layer, torch.float32)
    ref = layer(x)
    set_compute_dtype(layer, torch.bfloat16)
    out = layer(x)
    assert out.dtype == torch.float32
    assert torch.equal(out, ref)  # |sums| ≤ 256 are exact in bfloat16
    layer.eval()
    assert torch.equal(layer(x), ref)  # evaluation is always float32


def test_set_compute_dtype_rejects_other_dtypes():
    with pytest.raises(ValueError, match="float16"):
        set_compute_dtype(BinaryLinear(2, 2), torch.float16)


def test_binary_activation_deterministic_in_eval():
    act = BinaryActivation(stochastic=True)
    x = torch.tensor([-0.5, 0.0, 0.2])
    act.eval()
    assert act(x).tolist() == [-1.0, 1.0, 1.0]
    act.train()
    assert set(act(torch.zeros(1000)).tolist()) == {-1.0, 1.0}  # p = 1/2 each


def test_fixed_point_input():
    fp = FixedPointInput()
    p = torch.tensor([0, 1, 127, 128, 129, 255], dtype=torch.uint8)
    assert fp(p).tolist() == [-1.0, -127 / 128, -1 / 128, 0.0, 1 / 128, 127 / 128]
    with pytest.raises(TypeError, match="uint8"):
        fp(torch.zeros(3))
    with pytest.raises(ValueError, match="power of two"):
        FixedPointInput(scale=0.01)


def test_shift_batchnorm_hand_computed_algorithm_3():
    bn = ShiftBatchNorm1d(1, eps=1e-4, momentum=0.1)
    with torch.no_grad():
        bn.weight.fill_(3.0)  # AP2(3) = 4
        bn.bias.fill_(0.25)
    x = torch.tensor([[1.0], [2.0], [3.0], [6.0]])
    # μ = 3; C = [−2, −1, 0, 3]; AP2(C) = [−2, −1, 0, 4]; σ² = (4 + 1 + 0 + 12)/4 = 4.25;
    # 1/√(4.25 + 1e−4) = 0.485 → AP2 = 0.5; x̂ = [−1, −0.5, 0, 1.5]; y = 4·x̂ + 0.25.
    y = bn(x)
    assert y.squeeze(1).tolist() == [-3.75, -1.75, 0.25, 6.25]
    # running stats: mean 0.1·3 = 0.3; var 0.9·1 + 0.1·(4.25·4/3)
    assert bn.running_mean.item() == pytest.approx(0.3)
    assert bn.running_var.item() == pytest.approx(0.9 + 0.1 * 4.25 * 4 / 3)
    bn.eval()
    # scale = AP2(3)·AP2(1/√(1.4667)) = 4·AP2(0.8257) = 4·1; shift = 0.25 − 0.3·4
    scale, shift = bn.eval_affine()
    assert scale.item() == 4.0 and shift.item() == pytest.approx(-0.95)
    assert bn(torch.tensor([[2.0]])).item() == pytest.approx(8 - 0.95)


def test_shift_batchnorm_gradient_equals_batchnorm_gradient_where_ap2_is_exact():
    # With centred values ±d (d a power of two) and γ a power of two, every AP2 in Algorithm 3 is
    # exact (eps ≈ 0), so the straight-through backward must equal the standard BN backward.
    torch.manual_seed(0)
    a = torch.randn(3, dtype=torch.float64)
    d = torch.tensor([0.5, 1.0, 4.0], dtype=torch.float64)
    signs = torch.tensor([[-1.0], [1.0], [1.0], [-1.0]], dtype=torch.float64)
    x = (a + signs * d).requires_grad_()
    gamma = torch.tensor([2.0, 0.25, 1.0], dtype=torch.float64)
    beta = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    bn = ShiftBatchNorm1d(3, eps=1e-300).double()
    with torch.no_grad():
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
    g = torch.randn(4, 3, dtype=torch.float64)
    bn(x).backward(g)
    x2 = x.detach().clone().requires_grad_()
    w2, b2 = gamma.clone().requires_grad_(), beta.clone().requires_grad_()
    F.batch_norm(x2, None, None, w2, b2, training=True, eps=1e-300).backward(g)
    assert torch.allclose(x.grad, x2.grad, atol=1e-12)
    assert torch.allclose(bn.weight.grad, w2.grad, atol=1e-12)
    assert torch.allclose(bn.bias.grad, b2.grad, atol=1e-12)


def test_shift_batchnorm_input_gradient_sums_to_zero():
    bn = ShiftBatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    bn(x).backward(torch.randn(4, 3, 5, 5))
    assert torch.allclose(x.grad.sum((0, 2, 3)), torch.zeros(3), atol=1e-4)


def test_shift_batchnorm2d_uses_all_but_channel_dims_and_power_of_two_scales():
    bn = ShiftBatchNorm2d(2)
    x = torch.randn(3, 2, 4, 4) * torch.tensor([1.0, 10.0]).view(1, 2, 1, 1)
    y = bn(x)
    centred = x - x.mean((0, 2, 3), keepdim=True)
    ratio = y / centred  # γ = 1, β = 0: y = C · AP2(1/σ), one power of two per channel
    for c in range(2):
        r = ratio[:, c][centred[:, c].abs() > 1e-3]
        assert torch.allclose(r, r[0].expand_as(r)) and ap2(r[0]) == r[0]


def test_shift_batchnorm_rejects_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value"):
        ShiftBatchNorm1d(4)(torch.randn(1, 4))


@pytest.mark.parametrize(
    "cls,torch_cls,shape",
    [
        (ExactBatchNorm1d, nn.BatchNorm1d, (16, 6)),
        (ExactBatchNorm2d, nn.BatchNorm2d, (4, 6, 3, 3)),
    ],
)
def test_batchnorm_matches_torch_and_eval_is_pinned(cls, torch_cls, shape):
    torch.manual_seed(0)
    ours, ref = cls(6, eps=1e-4), torch_cls(6, eps=1e-4)
    with torch.no_grad():
        for bn in (ours, ref):
            bn.weight.copy_(torch.tensor([1.5, -2.0, 0.0, 0.3, 1.0, 4.0]))
            bn.bias.copy_(torch.linspace(-1, 1, 6))
    for _ in range(3):
        x = torch.randn(shape) * 3 + 1
        assert torch.allclose(ours(x), ref(x), atol=1e-5)
    ref_state = ref.state_dict()
    assert ours.state_dict().keys() == ref_state.keys()
    assert all(torch.equal(ours.state_dict()[k], ref_state[k]) for k in ref_state)
    ours.eval(), ref.eval()
    x = torch.randn(shape)
    scale, shift = ours.eval_affine()
    view = [1, -1] + [1] * (len(shape) - 2)
    assert torch.equal(ours(x), x * scale.view(view) + shift.view(view))
    assert torch.allclose(ours(x), ref(x), atol=1e-5)


def test_clip_weights_only_touches_binary_layers():
    model = nn.Sequential(BinaryLinear(4, 4), nn.Linear(4, 4), BinaryConv2d(1, 1, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0).add_(3.0)
    clip_weights_(model)
    assert model[0].weight.max() == 1.0 and model[2].weight.max() == 1.0
    assert model[1].weight.max() == 3.0


@pytest.mark.parametrize("pad_value", [1, -1])
def test_binary_conv_pads_its_input_with_pad_value(pad_value):
    """pad_value ±1: the convolution of sign(W) over the input padded with that value (Larq's
    "same-one"); its border differs from zero padding."""
    torch.manual_seed(0)
    conv = BinaryConv2d(3, 4, 3, stride=(1, 2), padding=(2, 1), pad_value=pad_value).eval()
    x = torch.randn(2, 3, 5, 6)
    x_b = torch.where(x >= 0, 1.0, -1.0)
    padded = F.pad(x_b, (1, 1, 2, 2), value=float(pad_value))
    expected = F.conv2d(padded, torch.where(conv.weight >= 0, 1.0, -1.0), stride=(1, 2))
    assert torch.equal(conv(x), expected)
    zero = F.conv2d(x_b, torch.where(conv.weight >= 0, 1.0, -1.0), stride=(1, 2), padding=(2, 1))
    assert not torch.equal(conv(x), zero)
    assert f"pad_value={pad_value}" in repr(conv)


def test_binary_conv_pad_value_is_checked():
    with pytest.raises(ValueError, match=r"^pad_value must be 0, 1 or -1, got 2$"):
        BinaryConv2d(3, 4, 3, padding=1, pad_value=2)
    with pytest.raises(ValueError, match=r"^pad_value must be 0, 1 or -1, got True$"):
        BinaryConv2d(3, 4, 3, padding=1, pad_value=True)
    with pytest.raises(
        ValueError, match=r"pad_value=-1 needs a numeric padding, got padding='same'"
    ):
        BinaryConv2d(3, 4, 3, padding="same", pad_value=-1)
    assert "pad_value" not in repr(BinaryConv2d(3, 4, 3, padding=1))
