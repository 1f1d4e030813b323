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


def test_submodules_load_on_attribute_access():
    assert binarynet.models.mnist_mlp is not None
    assert binarynet.nn.BinaryLinear is not None
    assert "models" in dir(binarynet) and "engine" in dir(binarynet)


def test_summarize_is_the_summary_function():
    assert binarynet.summarize is binarynet.summary.summary


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'no_such_module'"):
        _ = binarynet.no_such_module
    with pytest.raises(AttributeError):
        _ = binarynet._kernels_private_name


def test_importing_binarynet_or_its_engine_imports_no_torch():
    code = (
        "import sys, binarynet as bn; a = 'torch' in sys.modules; bn.engine; bn.bnnfile; "
        "print(a, 'torch' in sys.modules)"
    )
    assert _run(code) == "False False"
