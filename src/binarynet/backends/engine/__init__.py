"""The torch-free inference engine: runs a ``.bnn`` file on the compiled XNOR-popcount kernels.
Imports :mod:`binarynet.graph`, NumPy and ``binarynet._kernels``; never torch or training.

    >>> from binarynet import engine
    >>> model = engine.load("mnist.bnn", threads=2)
    >>> model.predict(images)          # uint8 [N, 28, 28] → int64 [N]
    >>> model.scores(images)           # float32 [N, 10], bit-identical to the torch model's

Only NumPy, ``safetensors`` and ``binarynet._kernels`` are imported, never torch. The file format
is described in :mod:`binarynet.graph.bnnfile`, the maths of the export in :mod:`binarynet.export`,
the execution plan in :mod:`binarynet.backends.engine.model`.
"""

from binarynet.backends.engine.kernels import available_kernels
from binarynet.backends.engine.model import Model, load
from binarynet.graph.bnnfile import BNNFileError

__all__ = ["BNNFileError", "Model", "available_kernels", "load"]
