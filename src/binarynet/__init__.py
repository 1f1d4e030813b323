"""binarynet: Binarized Neural Networks (Courbariaux, Hubara, Soudry, El-Yaniv, Bengio, 2016).

Training lives in :mod:`binarynet.quantize`, :mod:`binarynet.nn`, :mod:`binarynet.optim`,
:mod:`binarynet.losses`, :mod:`binarynet.models` and :mod:`binarynet.train` (these need PyTorch);
:mod:`binarynet.data` reads datasets with NumPy only; deployment lives in :mod:`binarynet.export`
and :mod:`binarynet.engine` (the engine needs only NumPy and the compiled kernels). Importing
``binarynet`` itself imports neither torch nor the kernels.
"""

import importlib
import importlib.util
import pkgutil
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Submodules on first use, as SciPy does: ``import binarynet as bn; bn.models`` imports
    :mod:`binarynet.models` then (so ``bn.engine`` never pulls in torch). ``binarynet.summary``
    is a callable module (``binarynet.summary(model)``); ``binarynet.summarize`` is the same
    function (:func:`binarynet.summary.summary`)."""
    if name == "summarize":
        return importlib.import_module(f"{__name__}.summary").summary
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    public = (m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return sorted({*globals(), *public, "summarize"})
