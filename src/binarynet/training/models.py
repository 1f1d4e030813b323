"""The paper's networks, built from :mod:`binarynet.training.nn`.

Every model takes uint8 images (MNIST: [N, 28, 28] or [N, 1, 28, 28]; CIFAR-10/SVHN:
[N, 3, 32, 32]) and returns class scores [N, 10]. The structure follows the paper's code: every
binary layer is followed by batch norm; hidden units are binarized by :class:`BinaryActivation`
after batch norm; max-pooling sits between a convolution and its batch norm; the output layer is a
binary layer followed by batch norm, trained with the square hinge loss.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import torch
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
)

__all__ = [
    "MODELS",
    "build_model",
    "cifar10_convnet",
    "float_mlp",
    "images_to_torch",
    "mnist_mlp",
    "svhn_convnet",
]


def _bn1d(features: int, shift_bn: bool, eps: float, momentum: float) -> nn.Module:
    cls = ShiftBatchNorm1d if shift_bn else ExactBatchNorm1d
    return cls(features, eps=eps, momentum=momentum)


def _bn2d(channels: int, shift_bn: bool, eps: float, momentum: float) -> nn.Module:
    cls = ShiftBatchNorm2d if shift_bn else ExactBatchNorm2d
    return cls(channels, eps=eps, momentum=momentum)


def _check_positive(name: str, value: int) -> None:
    if not (isinstance(value, int) and value > 0):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def mnist_mlp(
    hidden: int = 4096,
    depth: int = 3,
    shift_bn: bool = False,
    dropout_in: float = 0.0,
    dropout_hidden: float = 0.0,
    stochastic: bool = False,
    bn_eps: float = 1e-4,
    bn_momentum: float = 0.1,
    num_classes: int = 10,
    in_features: int = 784,
) -> nn.Sequential:
    """The paper's MNIST MLP: 784 → depth × hidden → 10, batch norm after every layer.

    The Theano recipe is ``mnist_mlp(4096, 3, dropout_in=0.2, dropout_hidden=0.5)`` with Adam; the
    Torch7 recipe ``mnist_mlp(2048, 3, shift_bn=True)`` with shift-based AdaMax.
    ``stochastic`` makes the hidden units stochastic while training (Eq. 2).
    """
    _check_positive("hidden", hidden)
    _check_positive("depth", depth)
    _check_probability("dropout_in", dropout_in)
    _check_probability("dropout_hidden", dropout_hidden)
    layers: list[nn.Module] = [FixedPointInput(), nn.Flatten()]
    if dropout_in:
        layers.append(nn.Dropout(dropout_in))
    width = in_features
    for _ in range(depth):
        layers += [
            BinaryLinear(width, hidden, binarize_input=False),  # the first: 8-bit input (Alg. 5)
            _bn1d(hidden, shift_bn, bn_eps, bn_momentum),
            BinaryActivation(stochastic=stochastic),
        ]
        if dropout_hidden:
            layers.append(nn.Dropout(dropout_hidden))
        width = hidden
    layers += [
        BinaryLinear(width, num_classes, binarize_input=False),
        _bn1d(num_classes, shift_bn, bn_eps, bn_momentum),
    ]
    return nn.Sequential(*layers)


def float_mlp(
    hidden: int = 4096, depth: int = 3, num_classes: int = 10, in_features: int = 784
) -> nn.Sequential:
    """A float32 MLP of the same shape as :func:`mnist_mlp` (Linear → BatchNorm → ReLU), the
    baseline that speed and size are compared against."""
    _check_positive("hidden", hidden)
    _check_positive("depth", depth)
    layers: list[nn.Module] = [FixedPointInput(), nn.Flatten()]
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
        width = hidden
    layers += [nn.Linear(width, num_classes, bias=False), nn.BatchNorm1d(num_classes)]
    return nn.Sequential(*layers)


def _convnet(
    conv_widths: tuple[int, int, int],
    fc_width: int,
    shift_bn: bool,
    stochastic: bool,
    bn_eps: float,
    bn_momentum: float,
    num_classes: int,
    in_channels: int,
    image_size: int,
    pad_value: int = 0,
) -> nn.Sequential:
    layers: list[nn.Module] = [FixedPointInput()]
    channels = in_channels
    size = image_size
    for width in conv_widths:
        for pool in (False, True):
            # The first convolution takes the 8-bit input (Algorithm 5), zero-padded; the
            # others ±1, padded with pad_value.
            pad = pad_value if len(layers) > 1 else 0
            layers.append(
                BinaryConv2d(channels, width, 3, padding=1, binarize_input=False, pad_value=pad)
            )
            if pool:
                layers.append(nn.MaxPool2d(2))
            layers += [
                _bn2d(width, shift_bn, bn_eps, bn_momentum),
                BinaryActivation(stochastic=stochastic),
            ]
            channels = width
        size //= 2
    layers.append(nn.Flatten())
    features = channels * size * size
    for _ in range(2):
        layers += [
            BinaryLinear(features, fc_width, binarize_input=False),
            _bn1d(fc_width, shift_bn, bn_eps, bn_momentum),
            BinaryActivation(stochastic=stochastic),
        ]
        features = fc_width
    layers += [
        BinaryLinear(features, num_classes, binarize_input=False),
        _bn1d(num_classes, shift_bn, bn_eps, bn_momentum),
    ]
    return nn.Sequential(*layers)


def cifar10_convnet(
    width: float = 1.0,
    shift_bn: bool = False,
    stochastic: bool = False,
    bn_eps: float = 1e-4,
    bn_momentum: float = 0.1,
    fc_width: int = 1024,
    num_classes: int = 10,
    pad_value: int = 0,
) -> nn.Sequential:
    """The paper's CIFAR-10 ConvNet: (2×128C3)–MP2–(2×256C3)–MP2–(2×512C3)–MP2–(2×1024FC)–10,
    3×3 convolutions with padding 1, batch norm after every layer. ``width`` scales the
    convolution widths (1.0 is the paper's). ``pad_value`` pads the binary convolutions' ±1
    inputs (0, the paper's; −1 or +1 for XNOR hardware: :class:`BinaryConv2d`)."""
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    c1, c2, c3 = (max(1, round(c * width)) for c in (128, 256, 512))
    convs = (c1, c2, c3)
    return _convnet(
        convs, fc_width, shift_bn, stochastic, bn_eps, bn_momentum, num_classes, 3, 32, pad_value
    )


def svhn_convnet(
    shift_bn: bool = False,
    stochastic: bool = False,
    bn_eps: float = 1e-4,
    bn_momentum: float = 0.1,
    num_classes: int = 10,
) -> nn.Sequential:
    """The paper's SVHN ConvNet: the CIFAR-10 ConvNet with half the convolution widths
    (2×64C3–MP2–2×128C3–MP2–2×256C3–MP2–2×1024FC–10)."""
    return cifar10_convnet(0.5, shift_bn, stochastic, bn_eps, bn_momentum, 1024, num_classes)


MODELS: dict[
    str, Callable[..., nn.Sequential]
] = {  # the names of binarynet.config.MODELS (tests/test_config.py checks they agree)
    "mnist-mlp": mnist_mlp,
    "cifar10-convnet": cifar10_convnet,
    "svhn-convnet": svhn_convnet,
}


def build_model(name: str, **kwargs) -> nn.Sequential:
    """Build one of :data:`MODELS` by name with keyword arguments for its builder."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}") from None
    accepted = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"model {name!r} does not take {', '.join(unknown)}; its options are {list(accepted)}"
        )
    return builder(**kwargs)


def images_to_torch(images: np.ndarray) -> torch.Tensor:
    """uint8 images as the models take them: [N, H, W] (grey) unchanged, colour NHWC → NCHW
    (the PyTorch convention; datasets and the engine use NHWC)."""
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    if tensor.dim() == 4:
        tensor = tensor.permute(0, 3, 1, 2).contiguous()
    return tensor
