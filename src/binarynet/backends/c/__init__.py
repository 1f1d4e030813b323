"""C source for microcontrollers: a trained BNN as self-contained C99, bit-exact with the engine.

:func:`emit_c` turns a validated ``.bnn`` graph into ``NAME.h`` + ``NAME.c`` (the emitter, a
:class:`binarynet.graph.ops.GraphVisitor`, is :mod:`binarynet.backends.c.emit`; the runtime it pastes in,
with the maths, is ``runtime.c``); :func:`export_c` does it from a file (a ``.bnn`` model or a
training checkpoint) into a directory, as ``binarynet export MODEL OUT_DIR --format c`` does.
Torch-free, except that a checkpoint is first exported through :mod:`binarynet.export`.
"""

from binarynet.backends.c.emit import CSource, CSourceError, check_name, default_name, emit_c
from binarynet.backends.c.files import export_c, read_model

__all__ = [
    "CSource",
    "CSourceError",
    "check_name",
    "default_name",
    "emit_c",
    "export_c",
    "read_model",
]
