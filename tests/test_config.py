"""binarynet.config: the registries agree with their owners, the CLI builds its choices from
them, and the training module re-exports the same objects."""

from __future__ import annotations

import argparse
import dataclasses
import inspect

import pytest
import torch

from binarynet import config, data
from binarynet.cli import build_parser
from binarynet.data import preprocess
from binarynet.training import models


def test_model_names_are_those_of_the_builders() -> None:
    assert list(config.MODELS) == list(models.MODELS)


@pytest.mark.parametrize("name", list(config.MODELS))
def test_model_options_are_the_builders_arguments(name: str) -> None:
    builder = models.MODELS[name]
    assert sorted(config.MODELS[name].options) == sorted(inspect.signature(builder).parameters)


def test_recipe_config_takes_model_options_directly() -> None:
    cfg = config.recipe_config(hidden=128, epochs=2)
    assert (cfg.model_kwargs, cfg.epochs) == ({"hidden": 128}, 2)
    cfg = config.recipe_config("mnist-demo", hidden=256, depth=None)  # None: not given
    assert cfg.model_kwargs == {"hidden": 256, "depth": 2, "shift_bn": True}
    cfg = config.recipe_config("cifar10-theano", width=0.5, model_kwargs={"fc_width": 64})
    assert cfg.model_kwargs == {"width": 0.5, "fc_width": 64}
    with pytest.raises(ValueError, match=r"unknown option 'hiden'; model 'mnist-mlp' takes \["):
        config.recipe_config(hiden=128)
    with pytest.raises(ValueError, match="unknown option 'hidden'; model 'svhn-convnet' takes"):
        config.recipe_config("svhn-theano", hidden=128)
    with pytest.raises(ValueError, match="model must be one of"):
        config.recipe_config(model="resnet")


def test_augment_only_where_flips_keep_the_labels() -> None:
    assert config.TrainConfig(dataset="cifar10", augment=True).augment
    for dataset in ("mnist", "svhn"):
        with pytest.raises(ValueError, match=f"changes the labels of {dataset}"):
            config.TrainConfig(dataset=dataset, augment=True)


def test_from_dict_names_the_source() -> None:
    cfg = config.TrainConfig(lr=0.5, model_kwargs={"hidden": 8})
    assert config.TrainConfig.from_dict(dataclasses.asdict(cfg)) == cfg
    with pytest.raises(ValueError, match=r"^run/config\.json: unknown key 'foo', 'zoo'"):
        config.TrainConfig.from_dict({"foo": 1, "zoo": 2}, "run/config.json")
    with pytest.raises(ValueError, match=r"^run/config\.json: epochs must be a positive"):
        config.TrainConfig.from_dict({"epochs": "3"}, "run/config.json")


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("mnist-mlp", {"hidden": 8, "depth": 1}),
        ("cifar10-convnet", {"width": 1 / 32, "fc_width": 8}),
        ("svhn-convnet", {}),
    ],
)
def test_default_input_shape_is_what_the_model_takes(name: str, kwargs: dict) -> None:
    shape = config.MODELS[name].input_shape
    assert config.DEFAULT_INPUT_SHAPES[name] == shape
    model = models.build_model(name, **kwargs).eval()
    with torch.no_grad():
        scores = model(torch.zeros((2, *shape), dtype=torch.uint8))
    assert scores.shape == (2, 10)


def test_registries_owned_elsewhere_are_the_owners() -> None:
    assert config.DATASETS == data.DATASETS
    assert tuple(preprocess.PREPROCESSORS) == config.PREPROCESS
    for recipe in config.RECIPES.values():
        cfg = config.recipe_config(None, **recipe)
        assert cfg.model in config.MODELS and cfg.dataset in config.DATASETS


def test_train_re_exports_the_same_objects() -> None:
    from binarynet.training import checkpoint
    from binarynet.training import trainer as train

    for name in ("TrainConfig", "RECIPES", "recipe_config", "OPTIMIZERS", "COMPUTE_DTYPES"):
        assert getattr(train, name) is getattr(config, name), name
    assert train.DATASETS == config.DATASETS
    assert train.load_model is checkpoint.load_model
    assert train.images_to_torch is models.images_to_torch


def test_config_validates_against_the_registries() -> None:
    for field, bad in [
        ("optimizer", "sgd"),
        ("compute_dtype", "float16"),
        ("dataset", "imagenet"),
        ("preprocess", "whiten"),
        ("device", "tpu"),
    ]:
        with pytest.raises(ValueError, match=field):
            config.TrainConfig(**{field: bad})
    assert dataclasses.asdict(config.TrainConfig())["model"] == "mnist-mlp"


def _choices(parser: argparse.ArgumentParser, command: str) -> dict[str, tuple]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        action.dest: tuple(action.choices)
        for action in sub.choices[command]._actions
        if action.choices is not None
    }


def test_cli_choices_come_from_the_registries() -> None:
    parser = build_parser()
    assert _choices(parser, "train") == {
        "model": tuple(config.MODELS),
        "recipe": tuple(config.RECIPES),
        "dataset": config.DATASETS,
        "preprocess": config.PREPROCESS,
        "optimizer": config.OPTIMIZERS,
        "compute_dtype": config.COMPUTE_DTYPES,
        "device": config.DEVICES,
        "pad_value": config.PAD_VALUES,
    }
    assert _choices(parser, "eval")["dataset"] == config.DATASETS
