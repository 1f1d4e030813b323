"""The top-level package: lazy submodules, no torch for the engine, the version."""

from __future__ import annotations

import subprocess
import sys

import pytest

import binarynet


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def test_public_names_load_on_attribute_access():
    """The short public names are the modules of the subpackages, imported on first use."""
    import binarynet.backends.engine
    import binarynet.deploy
    import binarynet.training.models
    import binarynet.training.nn

    assert binarynet.models is binarynet.training.models
    assert binarynet.nn.BinaryLinear is binarynet.training.nn.BinaryLinear
    assert binarynet.engine is binarynet.backends.engine
    assert binarynet.export_c is binarynet.deploy.export_c
    assert {"models", "engine", "training", "graph", "backends"} <= set(dir(binarynet))


def test_summarize_is_the_summary_function():
    assert binarynet.summarize is binarynet.analysis.summary.summary


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'no_such_module'"):
        _ = binarynet.no_such_module
    with pytest.raises(AttributeError):
        _ = binarynet._kernels_private_name


def test_importing_binarynet_or_its_engine_imports_no_torch():
    code = (
        "import sys, binarynet as bn; a = 'torch' in sys.modules; bn.engine; "
        "import binarynet.graph.bnnfile; print(a, 'torch' in sys.modules)"
    )
    assert _run(code) == "False False"
