"""Training checkpoints: the one owner of the ``best.pt`` / ``last.pt`` format.

A checkpoint is a dict of tensors and plain Python values (no pickled objects) with a format
tag, written by ``torch.save``::

    format           "binarynet-checkpoint-1"
    config           the run's TrainConfig as a dict (binarynet.config)
    preprocess       the fitted preprocessor's state (arrays as tensors), or None
    model_state      the model's state_dict
    epoch            best.pt: the epoch (1-based) it was saved at; last.pt: completed epochs
    metrics          best.pt only: that epoch's row of metrics.jsonl
    optimizer_state, scheduler_state, rng_state, batch, accum, history, best, elapsed,
    epoch_signs, torch_version
                     last.pt only: what resuming needs (the training state, see
                     binarynet.training.trainer.Trainer.state_dict)

:func:`checkpoint_state` builds that dict (for both files), :func:`save_checkpoint` writes it
atomically (:func:`binarynet.atomic.atomic_write_bytes`: temporary file, fsync, rename,
directory fsync, so a run killed at any instant leaves either the old or the new file), and
:func:`read_checkpoint` reads a file once and rebuilds its model and preprocessor for export,
summary, plots and benchmarks. Loading uses ``torch.load(weights_only=True)``: only tensors and
plain containers are accepted, never arbitrary pickled objects.

This module sits below the training loop: it imports the models, never
:mod:`binarynet.training.trainer`.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from binarynet import filekind
from binarynet.atomic import atomic_write_bytes
from binarynet.data.preprocess import load_preprocessor
from binarynet.training.models import build_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "LoadedCheckpoint",
    "checkpoint_state",
    "load_checkpoint",
    "load_model",
    "preprocessor_state_to_torch",
    "read_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "binarynet-checkpoint-1"

_EXPORT_FROM_PYTHON = (
    "build the model in Python, load its weights, and call binarynet.export.export(model, "
    "'model.bnn', input_shape=...), or train it with binarynet train, whose best.pt / last.pt "
    "binarynet export takes"
)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically save ``state`` (tensors and plain containers) with the format tag."""
    payload = {"format": CHECKPOINT_FORMAT, **state}
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, with a clear error otherwise."""
    path = Path(path)
    filekind.require(path, filekind.CHECKPOINT, "checkpoint")  # missing, a directory, a .bnn
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # pickled objects beyond tensors and plain containers
        raise ValueError(
            f"{path} holds pickled Python objects (a torch.save(model) file?), which binarynet "
            f"does not unpickle; {_EXPORT_FROM_PYTHON}"
        ) from None
    except Exception as exc:  # truncated, corrupt or foreign file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{path} is not a readable binarynet checkpoint: {first}") from exc
    if (
        isinstance(state, dict)
        and state
        and "format" not in state
        and all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise ValueError(
            f"{path} is a bare state_dict: weights without the model they belong to; "
            f"{_EXPORT_FROM_PYTHON}"
        )
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"{path} is not a binarynet checkpoint "
            f"(format {found!r}, expected {CHECKPOINT_FORMAT!r})"
        )
    return state


def preprocessor_state_to_torch(state: Mapping[str, Any]) -> dict[str, Any]:
    """A preprocessor's state with its arrays as tensors (``torch.load(weights_only=True)``
    accepts tensors and plain values, not NumPy arrays)."""
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in state.items()}


def checkpoint_state(
    config: Mapping[str, Any],
    model: nn.Module,
    preprocessor: Any | None,
    *,
    epoch: int,
    metrics: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict saved as a checkpoint: the model part every checkpoint has, then ``metrics``
    (``best.pt``: the row of the epoch it was saved at) and/or ``training`` (``last.pt``: the
    state resuming needs, merged in as top-level keys).

    Args:
        config: the run's :class:`binarynet.config.TrainConfig` as a dict
            (``dataclasses.asdict``); it names the model and its keyword arguments, which
            :func:`read_checkpoint` rebuilds.
        model: the network (its ``state_dict`` is saved, on whatever device it is).
        preprocessor: the fitted :mod:`binarynet.data.preprocess` object, or None.
        epoch: ``best.pt``: the 1-based epoch; ``last.pt``: the number of completed epochs.
    """
    state: dict[str, Any] = {
        "config": dict(config),
        "preprocess": (
            None if preprocessor is None else preprocessor_state_to_torch(preprocessor.state_dict())
        ),
        "model_state": model.state_dict(),
    }
    if training is not None:
        clash = sorted(set(training) & (set(state) | {"epoch", "metrics", "format"}))
        if clash:
            raise ValueError(f"training state must not set {clash}: they are the model part")
        state.update(training)
    state["epoch"] = epoch
    if metrics is not None:
        state["metrics"] = dict(metrics)
    return state


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint read by :func:`read_checkpoint`.

    Attributes:
        path: the file it was read from.
        model: the rebuilt network in evaluation mode, on the CPU; its ``preprocessor``
            attribute is :attr:`preprocessor` (what :func:`binarynet.export.export` stores).
        preprocessor: the fitted preprocessor the run trained behind (apply its ``transform``
            to raw uint8 images first), or None.
        config: the run's configuration (a :class:`binarynet.config.TrainConfig` as a dict).
        epoch: see :func:`checkpoint_state` (None if absent).
        batch: ``last.pt``: the batches done in the epoch after ``epoch``; ``best.pt``: None.
        metrics: ``best.pt``: the metrics of its epoch; else None.
    """

    path: Path
    model: nn.Module
    preprocessor: Any | None
    config: dict[str, Any]
    epoch: int | None
    batch: int | None
    metrics: dict[str, Any] | None

    @property
    def is_last(self) -> bool:
        """True for a resumable ``last.pt`` (it has the position within an epoch)."""
        return self.batch is not None


def read_checkpoint(path: str | os.PathLike) -> LoadedCheckpoint:
    """Read a ``best.pt`` / ``last.pt`` once and rebuild its model and preprocessor.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a binarynet checkpoint, or one without a model (config and model state).
    """
    path = Path(path)
    state = load_checkpoint(path)
    cfg = state.get("config")
    if not isinstance(cfg, dict) or "model_state" not in state:
        raise ValueError(f"{path} is not a binarynet training checkpoint (best.pt / last.pt)")
    model = build_model(cfg["model"], **cfg.get("model_kwargs", {}))
    model.load_state_dict(state["model_state"])
    saved = state.get("preprocess")
    preprocessor = load_preprocessor(saved) if saved is not None else None
    model.preprocessor = preprocessor  # type: ignore[assignment]  # a plain attribute
    epoch, batch, metrics = state.get("epoch"), state.get("batch"), state.get("metrics")
    return LoadedCheckpoint(
        path=path,
        model=model.eval(),
        preprocessor=preprocessor,
        config=cfg,
        epoch=int(epoch) if isinstance(epoch, int) else None,
        batch=int(batch) if isinstance(batch, int) else None,
        metrics=dict(metrics) if isinstance(metrics, dict) else None,
    )


def load_model(path: str | os.PathLike) -> nn.Module:
    """Rebuild the model of a ``best.pt`` / ``last.pt`` checkpoint, in evaluation mode
    (``read_checkpoint(path).model``).

    The model's ``preprocessor`` attribute is the fitted preprocessor the run trained with
    (:mod:`binarynet.data.preprocess`), or None: apply its ``transform`` to raw uint8 images first.
    """
    return read_checkpoint(path).model
