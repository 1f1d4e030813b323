#!/usr/bin/env python3
"""Coverage-guided fuzzing of the ``.bnn`` loader and the engine behind it (atheris/libFuzzer).

The property is the one of ``tests/graph/test_fuzz_bnn.py`` (``bnn_models.check_file``): any input
file either makes :func:`binarynet.backends.engine.load` raise ``BNNFileError``, or loads into a
model whose scores and pre-activations equal the NumPy reference interpreter bit for bit. Anything
else (another exception, a failed comparison) is a crash: libFuzzer stops and writes the input
to ``crash-<sha1>``; a run over ``-timeout`` seconds is a hang; over ``-rss_limit_mb``, a
memory blow-up. Under ``tools/sanitize.sh`` the compiled kernels are built with
AddressSanitizer + UBSan, so memory errors in C++ are crashes too.

The first byte of each input picks how the rest is used:

- ``0``: the bytes are the file, as they are (the checksum catches most damage: this explores
  the framing and header parsing);
- ``1``: the bytes are the file with its checksum recomputed (``bnn_models.reseal``), so that
  damage to the graph JSON and the tensor data reaches the graph validation and the engine;
- ``2``: the bytes drive ``bnn_models.random_model`` + ``bnn_models.mutate`` (structure-aware:
  a random valid model broken at the graph, tensor, header or byte level, checksum re-sealed).

Run::

    python fuzz/make_corpus.py build/fuzz/corpus          # seeds: small valid models
    python fuzz/fuzz_bnn.py build/fuzz/corpus -max_total_time=60 -timeout=30 -rss_limit_mb=4096

(libFuzzer's own flags; ``-runs=N`` for a number of inputs, ``crash-*`` files to replay one.)

Memory: atheris's instrumentation of ``binarynet`` keeps up to ~2 KB alive per input that runs
the engine (the same loop without atheris is flat): a 10-minute run (590 000 inputs) peaked at
195 MB. Raise ``-rss_limit_mb`` for runs of hours.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["binarynet"]):  # first: before anything imports it
    from binarynet.backends import engine  # noqa: F401  (instrumented for coverage)

import bnn_models as bm  # not instrumented: atheris's comparison hook keeps NumPy arrays alive
import numpy as np

_SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None  # a file in memory: fast writes
_DIR = Path(tempfile.mkdtemp(prefix="fuzz-bnn-", dir=_SHM))
_PATH = _DIR / "input.bnn"


def file_bytes(data: bytes) -> bytes:
    """The model file that input ``data`` stands for (see the module docstring)."""
    if not data:
        return b""
    mode, rest = data[0] % 3, data[1:]
    if mode == 0:
        return rest
    if mode == 1:
        return bm.reseal(rest)
    ch = bm.FdpChooser(atheris.FuzzedDataProvider(rest))
    graph, tensors = bm.random_model(ch, max_side=6, max_stages=3)
    return bm.mutate(ch, graph, tensors)


def test_one_input(data: bytes) -> None:
    _PATH.write_bytes(file_bytes(data))
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        bm.check_file(_PATH, batch=2, seed=len(data))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        _PATH.unlink(missing_ok=True)
        _DIR.rmdir()


if __name__ == "__main__":
    main()
