"""binarynet: Binarized Neural Networks (Courbariaux, Hubara, Soudry, El-Yaniv, Bengio, 2016).

The public API, each name imported on first use (``import binarynet`` imports neither torch nor
the compiled kernels):

- ``binarynet.nn`` — the layers (:mod:`binarynet.training.nn`); ``binarynet.models``,
  ``binarynet.optim``, ``binarynet.losses``, ``binarynet.quantize`` — the rest of training;
- ``binarynet.data`` — datasets as uint8 arrays and the deployable preprocessors;
- ``binarynet.export`` — a trained model → a ``.bnn`` graph (:func:`binarynet.export.export`);
- ``binarynet.engine`` — run a ``.bnn`` on the CPU kernels (:func:`binarynet.engine.load`);
- ``binarynet.export_c`` / ``binarynet.export_qonnx`` — C99 for microcontrollers, QONNX for FPGAs;
- ``binarynet.summary`` — bits, bytes, operations and energy of a model (callable).

The packages follow the flow of a model: :mod:`binarynet.data` → :mod:`binarynet.training` →
:mod:`binarynet.export` → :mod:`binarynet.graph` → :mod:`binarynet.backends` →
:mod:`binarynet.analysis` (docs/architecture.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_PUBLIC: dict[str, tuple[str, str | None]] = {
    "nn": ("binarynet.training.nn", None),
    "models": ("binarynet.training.models", None),
    "optim": ("binarynet.training.optim", None),
    "losses": ("binarynet.training.losses", None),
    "quantize": ("binarynet.training.quantize", None),
    "data": ("binarynet.data", None),
    "export": ("binarynet.export", None),
    "engine": ("binarynet.backends.engine", None),
    "export_c": ("binarynet.deploy", "export_c"),
    "export_qonnx": ("binarynet.deploy", "export_qonnx"),
    "summary": ("binarynet.analysis.summary", None),
    "summarize": ("binarynet.analysis.summary", "summary"),
}
_SUBPACKAGES = ("training", "data", "graph", "export", "backends", "analysis", "pretrained")

if TYPE_CHECKING:
    from binarynet import data as data
    from binarynet import export as export
    from binarynet.analysis import summary as summary
    from binarynet.backends import engine as engine
    from binarynet.training import losses as losses
    from binarynet.training import models as models
    from binarynet.training import nn as nn
    from binarynet.training import optim as optim
    from binarynet.training import quantize as quantize


def __getattr__(name: str) -> Any:
    """The public names on first use, as SciPy does: ``bn.engine`` imports the engine then
    (never torch); ``bn.nn`` imports the training layers. ``binarynet.summary`` is a callable
    module (``binarynet.summary(model)``); ``binarynet.summarize`` is the same function."""
    if name in _PUBLIC:
        module, attribute = _PUBLIC[name]
        found = importlib.import_module(module)
        return found if attribute is None else getattr(found, attribute)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC, *_SUBPACKAGES})
