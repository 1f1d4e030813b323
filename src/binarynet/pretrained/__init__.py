"""Trained models shipped with binarynet: try the engine and the C export without training.
Imports nothing of binarynet: it names the shipped ``.bnn`` files.

``mnist-mlp-256``
    The MNIST MLP 784-256-256-10 (shift-based batch norm, shift AdaMax; 41 KB as ``.bnn``),
    trained for 30 epochs on the official MNIST training set (50 000 images, 10 000 held out
    for validation), best validation epoch kept::

        binarynet train --recipe mnist-demo --hidden 256 --depth 2 --epochs 30 \\
            --lr-halve-every 6 --data-dir MNIST_DIR --out RUN
        binarynet export RUN/best.pt mnist-mlp-256.bnn

    Test error 3.48 % on the 10 000 official test images (validation 3.16 %). Small on purpose:
    it fits any Cortex-M with 64 KB of flash; the paper's 3 × 4096 network reaches 0.96 %.

Every command that takes a model file also takes ``pretrained:NAME``
(``binarynet eval pretrained:mnist-mlp-256``); in Python, :func:`path` gives the file.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PREFIX", "names", "path", "resolve"]

PREFIX = "pretrained:"
_FILES = {"mnist-mlp-256": "mnist-mlp-256.bnn"}


def names() -> list[str]:
    """The shipped models' names."""
    return sorted(_FILES)


def path(name: str = "mnist-mlp-256") -> Path:
    """The ``.bnn`` file of a shipped model (ValueError naming the choices for another name)."""
    if name not in _FILES:
        raise ValueError(f"no pretrained model {name!r}; expected one of {names()}")
    return Path(__file__).with_name(_FILES[name])


def resolve(model: str) -> str:
    """A command-line model argument: ``pretrained:NAME`` → that file's path; anything else as
    given."""
    if model.startswith(PREFIX):
        return str(path(model[len(PREFIX) :]))
    return model
