import pytest
import torch
from torch import nn

from binarynet.training.models import (
    build_model,
    cifar10_convnet,
    float_mlp,
    mnist_mlp,
    svhn_convnet,
)
from binarynet.training.nn import (
    BinaryActivation,
    BinaryConv2d,
    BinaryLinear,
    ExactBatchNorm1d,
    ShiftBatchNorm1d,
    ShiftBatchNorm2d,
    binary_layers,
)


def test_mnist_mlp_structure_and_parameter_count():
    model = mnist_mlp(hidden=4096, depth=3)
    dense = list(binary_layers(model))
    assert [(d.in_features, d.out_features) for d in dense] == [
        (784, 4096),
        (4096, 4096),
        (4096, 4096),
        (4096, 10),
    ]
    weights = sum(d.weight.numel() for d in dense)
    assert weights == 784 * 4096 + 2 * 4096 * 4096 + 4096 * 10
    # batch norm right after every binary layer
    mods = list(model)
    for d in dense:
        assert isinstance(mods[mods.index(d) + 1], ExactBatchNorm1d)
    assert not dense[0].binarize_input
    assert sum(isinstance(m, BinaryActivation) for m in mods) == 3
    out = model(torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8))
    assert out.shape == (3, 10)


def test_mnist_mlp_options():
    model = mnist_mlp(64, 2, shift_bn=True, dropout_in=0.2, dropout_hidden=0.5, stochastic=True)
    assert sum(isinstance(m, ShiftBatchNorm1d) for m in model) == 3
    assert [m.p for m in model if isinstance(m, nn.Dropout)] == [0.2, 0.5, 0.5]
    assert all(m.stochastic for m in model if isinstance(m, BinaryActivation))
    with pytest.raises(ValueError, match="dropout_in"):
        mnist_mlp(dropout_in=1.0)


def test_cifar10_convnet_matches_the_paper():
    model = cifar10_convnet(shift_bn=True)
    convs = [m for m in model if isinstance(m, BinaryConv2d)]
    assert [c.out_channels for c in convs] == [128, 128, 256, 256, 512, 512]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    fcs = [m for m in model if isinstance(m, BinaryLinear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [
        (8192, 1024),
        (1024, 1024),
        (1024, 10),
    ]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model) == 3
    assert sum(isinstance(m, ShiftBatchNorm2d) for m in model) == 6
    small = cifar10_convnet(width=0.125)
    assert small(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)).shape == (2, 10)


def test_svhn_convnet_has_half_widths():
    convs = [m for m in svhn_convnet() if isinstance(m, BinaryConv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256]


def test_float_mlp_same_shape():
    f = float_mlp(64, 2)
    assert [m.weight.shape for m in f if isinstance(m, nn.Linear)] == [
        (64, 784),
        (64, 64),
        (10, 64),
    ]


def test_build_model_errors():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet")
    with pytest.raises(ValueError, match="does not take width"):
        build_model("mnist-mlp", width=2.0)
