"""What a training run can be: the registries of names and the run configuration, without torch.

Every name a user can choose lives here once: the models (:data:`MODELS`, with the per-example
input shape each takes), the datasets (:data:`DATASETS`, owned by :mod:`binarynet.data`), the
preprocessors (:data:`PREPROCESS`, owned by :mod:`binarynet.data.preprocess`), the optimizers
(:data:`OPTIMIZERS`), the dtypes of the training matmuls (:data:`COMPUTE_DTYPES`), the devices
(:data:`DEVICES`) and the paper's recipes (:data:`RECIPES`). :class:`TrainConfig` checks a run's
values against them, and the command line (:mod:`binarynet.cli`) builds its choices and help
from them, so a new model or recipe is one entry here, not a list to re-type elsewhere.

The module imports neither torch nor the training code: the command line reads it to build its
parser before any torch import, and a deployment machine can read a ``config.json`` with it.
What needs torch (building a model, resolving ``compute_dtype="auto"`` on a device) stays in
:mod:`binarynet.training.models` and :mod:`binarynet.training.trainer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from binarynet.data import DATASETS
from binarynet.data.preprocess import PREPROCESSORS

__all__ = [
    "COMPUTE_DTYPES",
    "DATASETS",
    "DEFAULT_INPUT_SHAPES",
    "DEVICES",
    "FLIP_AUGMENTABLE",
    "MODELS",
    "OPTIMIZERS",
    "PAD_VALUES",
    "PREPROCESS",
    "RECIPES",
    "ModelSpec",
    "TrainConfig",
    "recipe_config",
]


@dataclass(frozen=True)
class ModelSpec:
    """A model of :mod:`binarynet.training.models` as the rest of the package sees it, without
    torch.

    Attributes:
        input_shape: the per-example torch input shape of uint8 images it takes by default:
            ``(H, W)`` for grey images, ``(C, H, W)`` for colour (NCHW; the engine takes NHWC).
            What export and summary use when a checkpoint does not say otherwise.
        options: the keyword arguments of its builder (``TrainConfig.model_kwargs`` keys), so
            that :func:`recipe_config` can take them directly (``recipe_config(hidden=128)``).
    """

    input_shape: tuple[int, ...]
    options: tuple[str, ...] = ()


_BN_OPTIONS = ("shift_bn", "stochastic", "bn_eps", "bn_momentum", "num_classes")
MODELS: dict[str, ModelSpec] = {
    "mnist-mlp": ModelSpec(
        input_shape=(28, 28),
        options=("hidden", "depth", "dropout_in", "dropout_hidden", "in_features", *_BN_OPTIONS),
    ),
    "cifar10-convnet": ModelSpec(
        input_shape=(3, 32, 32), options=("width", "fc_width", "pad_value", *_BN_OPTIONS)
    ),
    "svhn-convnet": ModelSpec(input_shape=(3, 32, 32), options=_BN_OPTIONS),
}
"""The paper's models by name (their builders: :data:`binarynet.training.models.MODELS`, same
names)."""

DEFAULT_INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    name: spec.input_shape for name, spec in MODELS.items()
}
"""Per-example torch input shapes of the paper's models (used when ``input_shape`` is None)."""

PREPROCESS: tuple[str, ...] = tuple(PREPROCESSORS)
"""Names of the preprocessors (:data:`binarynet.data.preprocess.PREPROCESSORS`)."""

PAD_VALUES: tuple[int, ...] = (0, 1, -1)
"""What a ConvNet's binary convolutions pad their ±1 input with (``pad_value``): 0 as torch
does, or a ±1 activation (the form XNOR hardware such as FINN's computes)."""
OPTIMIZERS: tuple[str, ...] = ("adam", "shift-adamax")
"""``torch.optim.Adam`` (the Theano code) or :class:`binarynet.training.optim.ShiftAdaMax`
(Torch7)."""

COMPUTE_DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16")
"""Dtype of the training matmuls; "auto" is resolved against the device by
:func:`binarynet.training.trainer.resolve_compute_dtype`."""

DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")
"""Where training runs; "auto" is CUDA when torch sees a GPU, else the CPU."""

FLIP_AUGMENTABLE: tuple[str, ...] = ("cifar10",)
"""The datasets whose labels survive a horizontal flip, so that ``augment`` (random crops and
flips, :mod:`binarynet.training.augment`) may be used on them. A mirrored digit (MNIST, SVHN) is
another symbol or none, so augmenting them would train on wrong labels."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json`` and in checkpoints)."""

    model: str = "mnist-mlp"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "mnist"
    data_dir: str | None = None
    optimizer: str = "shift-adamax"
    lr: float = 2.0**-10
    lr_final: float | None = None
    lr_halve_every: int | None = None
    glorot_lr: bool = True
    glorot_pow2: bool = True
    batch_size: int = 100
    epochs: int = 10
    seed: int = 0
    compute_dtype: str = "auto"
    threads: int | None = None
    checkpoint_every: float = 300.0  # seconds between mid-epoch checkpoints; 0: every batch
    eval_batch_size: int = 1000
    recipe: str | None = None
    preprocess: str | None = None
    augment: bool = False
    cache_dir: str | None = None
    device: str = "cpu"
    init_from: str | None = None  # a best.pt / last.pt whose model (and preprocessor) start the run

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {tuple(MODELS)}, got {self.model!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(
                f"compute_dtype must be one of {COMPUTE_DTYPES}, got {self.compute_dtype!r}"
            )
        for name in ("batch_size", "epochs", "eval_batch_size"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite value > 0, got {self.lr!r}")
        if self.lr_final is not None and self.lr_halve_every is not None:
            raise ValueError("choose one schedule: lr_final (exponential decay) or lr_halve_every")
        if self.lr_final is not None and not self.lr_final > 0:
            raise ValueError(f"lr_final must be > 0, got {self.lr_final!r}")
        if self.lr_halve_every is not None and not self.lr_halve_every > 0:
            raise ValueError(f"lr_halve_every must be > 0, got {self.lr_halve_every!r}")
        if self.threads is not None and not self.threads > 0:
            raise ValueError(f"threads must be > 0, got {self.threads!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.preprocess is not None and self.preprocess not in PREPROCESS:
            raise ValueError(
                f"preprocess must be one of {sorted(PREPROCESS)} or None, got {self.preprocess!r}"
            )
        if not self.checkpoint_every >= 0:  # also refuses NaN; 0: every batch, inf: never
            raise ValueError(
                f"checkpoint_every must be >= 0 seconds, got {self.checkpoint_every!r}"
            )
        if self.augment and self.dataset not in FLIP_AUGMENTABLE:
            raise ValueError(
                f"augment (--augment) flips images left-right, which changes the labels of "
                f"{self.dataset} (mirrored digits); it is meant for {', '.join(FLIP_AUGMENTABLE)}"
            )

    @classmethod
    def from_dict(cls, values: Any, source: str = "the configuration") -> TrainConfig:
        """The configuration saved as ``values`` (a run's ``config.json``), checked: a
        ValueError naming ``source`` for anything but an object of known fields with valid
        values."""
        if not isinstance(values, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown key {', '.join(map(repr, unknown))} (not a TrainConfig field)"
            )
        if not isinstance(values.get("model_kwargs", {}), dict):
            raise ValueError(f"{source}: model_kwargs must be an object")
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None


# The paper's recipes (and a quick demo). Command-line options override single fields.
RECIPES: dict[str, dict[str, Any]] = {
    # A couple of minutes on two CPU cores on the bundled MNIST sample (`make demo`).
    "mnist-demo": {
        "model": "mnist-mlp",
        "model_kwargs": {"hidden": 1024, "depth": 2, "shift_bn": True},
        "optimizer": "shift-adamax",
        "lr": 2.0**-10,
        "lr_halve_every": 3,
        "glorot_lr": True,
        "glorot_pow2": True,
        "batch_size": 100,
        "epochs": 8,
    },
    # Theano code (Train-time/mnist.py): 3 × 4096, dropout 0.2 / 0.5, standard BN, Adam with the
    # Glorot LR scale, LR 3e-3 → 3e-7 by exponential decay over 1000 epochs, batch 100.
    "mnist-theano": {
        "model": "mnist-mlp",
        "model_kwargs": {"hidden": 4096, "depth": 3, "dropout_in": 0.2, "dropout_hidden": 0.5},
        "optimizer": "adam",
        "lr": 3e-3,
        "lr_final": 3e-7,
        "glorot_lr": True,
        "glorot_pow2": False,
        "batch_size": 100,
        "epochs": 1000,
    },
    # Torch7 code: 3 × 2048, shift-based BN, stochastic binary hidden units (its default
    # stcNeurons=true), shift-based AdaMax with power-of-two Glorot scales, learning rate halved
    # every k epochs, batch 100.
    "mnist-torch7": {
        "model": "mnist-mlp",
        "model_kwargs": {"hidden": 2048, "depth": 3, "shift_bn": True, "stochastic": True},
        "optimizer": "shift-adamax",
        "lr": 2.0**-10,
        "lr_halve_every": 10,
        "glorot_lr": True,
        "glorot_pow2": True,
        "batch_size": 100,
        "epochs": 100,
    },
    # Theano code (Train-time/cifar10.py): the ConvNet with standard BN, pixels scaled to
    # [−1, 1], Adam with the Glorot LR scale, LR 1e-3 → 3e-7 (exponential, 500 epochs), batch 50.
    "cifar10-theano": {
        "model": "cifar10-convnet",
        "dataset": "cifar10",
        "preprocess": "pixels",
        "optimizer": "adam",
        "lr": 1e-3,
        "lr_final": 3e-7,
        "glorot_lr": True,
        "glorot_pow2": False,
        "batch_size": 50,
        "epochs": 500,
    },
    # Torch7 code (Main_BinaryNet_Cifar10.lua): shift BN, GCN + ZCA whitening, shift AdaMax,
    # batch 200, LR halved every 50 epochs.
    "cifar10-torch7": {
        "model": "cifar10-convnet",
        "model_kwargs": {"shift_bn": True},
        "dataset": "cifar10",
        "preprocess": "gcn-zca",
        "optimizer": "shift-adamax",
        "lr": 2.0**-10,
        "lr_halve_every": 50,
        "glorot_lr": True,
        "glorot_pow2": True,
        "batch_size": 200,
        "epochs": 500,
    },
    # Theano code (Train-time/svhn.py): half-width ConvNet, Adam 1e-3 → 3e-6 over 200 epochs.
    "svhn-theano": {
        "model": "svhn-convnet",
        "dataset": "svhn",
        "preprocess": "pixels",
        "optimizer": "adam",
        "lr": 1e-3,
        "lr_final": 3e-6,
        "glorot_lr": True,
        "glorot_pow2": False,
        "batch_size": 50,
        "epochs": 200,
    },
    "svhn-torch7": {
        "model": "svhn-convnet",
        "model_kwargs": {"shift_bn": True},
        "dataset": "svhn",
        "preprocess": "gcn-zca",
        "optimizer": "shift-adamax",
        "lr": 2.0**-10,
        "lr_halve_every": 50,
        "glorot_lr": True,
        "glorot_pow2": True,
        "batch_size": 200,
        "epochs": 200,
    },
}


def recipe_config(recipe: str | None = None, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a named recipe with ``overrides`` (None values are ignored).

    An override is a :class:`TrainConfig` field or an option of the model's builder
    (:attr:`ModelSpec.options`), which goes into ``model_kwargs``:
    ``recipe_config("mnist-demo", hidden=128, epochs=2)``.
    """
    values: dict[str, Any] = {}
    if recipe is not None:
        try:
            values.update(RECIPES[recipe])
        except KeyError:
            raise ValueError(
                f"unknown recipe {recipe!r}; expected one of {sorted(RECIPES)}"
            ) from None
        values["model_kwargs"] = dict(values.get("model_kwargs", {}))
        values["recipe"] = recipe
    model_kwargs = dict(overrides.pop("model_kwargs", None) or {})
    model = overrides.get("model") or values.get("model") or TrainConfig.model
    spec = MODELS.get(model)
    config_fields = {f.name for f in fields(TrainConfig)}
    for key in [k for k in overrides if k not in config_fields]:
        if spec is None or key not in spec.options:
            options = f"; model {model!r} takes {list(spec.options)}" if spec else ""
            raise ValueError(f"recipe_config: unknown option {key!r}{options}")
        value = overrides.pop(key)
        if value is not None:
            model_kwargs[key] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    values.setdefault("model_kwargs", {})
    values["model_kwargs"].update(model_kwargs)
    return TrainConfig(**values)
