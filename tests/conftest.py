"""Shared pytest fixtures."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

# Triton reads TRITON_INTERPRET when it is first imported, and torch may import it early (any
# test touching torch._dynamo does). Without an NVIDIA device, decide now — before any test module
# imports torch — that Triton runs under its CPU interpreter, so the GPU kernel tests work
# whatever ran before them. (Checked without importing torch: the device nodes.)
if not glob.glob("/dev/nvidia[0-9]*"):
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
"""The real datasets, beside the repository (``../shared/data``); absent on most machines."""

MNIST_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository root; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mnist_dir(shared_data: Path) -> Path:
    """The directory with the four official gzipped MNIST files; skips when any is absent."""
    directory = shared_data / "mnist"
    missing = [name for name in MNIST_NAMES if not (directory / name).is_file()]
    if missing:
        pytest.skip(f"MNIST files missing in {directory}: {', '.join(missing)}")
    return directory


@pytest.fixture(scope="session")
def cifar10_jpeg_dir(shared_data: Path) -> Path:
    """The JPEG copy of CIFAR-10 (``index.csv`` + ``cifar10_jpeg_q75.tar.gz``); skips when
    either is absent."""
    directory = shared_data / "cifar10-jpeg"
    names = ("index.csv", "cifar10_jpeg_q75.tar.gz")
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        pytest.skip(f"CIFAR-10 JPEG copy incomplete in {directory}: {', '.join(missing)} missing")
    return directory
