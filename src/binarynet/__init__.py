"""binarynet: Binarized Neural Networks (Courbariaux, Hubara, Soudry, El-Yaniv, Bengio, 2016).

Training lives in :mod:`binarynet.quantize`, :mod:`binarynet.nn`, :mod:`binarynet.optim`,
:mod:`binarynet.losses`, :mod:`binarynet.models` and :mod:`binarynet.train` (these need PyTorch);
:mod:`binarynet.data` reads datasets with NumPy only; deployment lives in :mod:`binarynet.export`
and :mod:`binarynet.engine` (the engine needs only NumPy and the compiled kernels). Importing
``binarynet`` itself imports neither torch nor the kernels.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``binarynet.summary(model)`` / ``binarynet.summarize(model)``, imported lazily (no torch
    for a ``.bnn`` file); see :func:`binarynet.summary.summary`."""
    if name in ("summary", "summarize"):
        import importlib

        module = importlib.import_module("binarynet.summary")
        return module if name == "summary" else module.summary
    raise AttributeError(f"module 'binarynet' has no attribute {name!r}")
