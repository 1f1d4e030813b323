"""Atomic checkpoint files: a run killed at any instant leaves either the old or the new file.

A checkpoint is written with :func:`binarynet.atomic.atomic_write_bytes` (temporary file,
fsync, rename, directory fsync). Loading uses ``torch.load(weights_only=True)``: only
tensors and plain Python containers are accepted, never arbitrary pickled objects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from binarynet.atomic import atomic_write_bytes

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "binarynet-checkpoint-1"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically save ``state`` (tensors and plain containers) with the format tag."""
    payload = {"format": CHECKPOINT_FORMAT, **state}
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, with a clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt or foreign file
        raise ValueError(f"{path} is not a readable binarynet checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"{path} is not a binarynet checkpoint "
            f"(format {found!r}, expected {CHECKPOINT_FORMAT!r})"
        )
    return state
