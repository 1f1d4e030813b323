"""C source for microcontrollers: a trained BNN as self-contained C99, bit-exact with the engine.
Imports :mod:`binarynet.graph` and NumPy; never torch or training.

:func:`emit_c` turns a validated ``.bnn`` graph into ``NAME.h`` + ``NAME.c`` (the emitter, a
:class:`binarynet.graph.visitor.GraphVisitor`, is :mod:`binarynet.backends.c.emit`; the runtime
it pastes in, with the maths, is ``runtime.c``); :func:`write_c` writes them into a directory, as
``binarynet export MODEL OUT_DIR --format c`` does. Torch-free (:func:`binarynet.deploy.export_c`
also takes a training checkpoint, exported in memory).
"""

from binarynet.backends.c.emit import CSource, CSourceError, check_name, default_name, emit_c
from binarynet.backends.c.files import write_c

__all__ = [
    "CSource",
    "CSourceError",
    "check_name",
    "default_name",
    "emit_c",
    "write_c",
]
