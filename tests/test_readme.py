"""The README's Python example runs as written (so that it cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import binarynet.training.trainer
from binarynet.data import Split, Splits, mnist_sample

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    """The first ``python`` code block of the README."""
    match = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README.md has no ```python block"
    return match.group(1)


def test_readme_python_example_trains_exports_and_predicts(tmp_path, monkeypatch, capsys):
    code = python_example()
    for step in ("Trainer(", "export_checkpoint(", "engine.load(", ".predict("):
        assert step in code
    s = mnist_sample()  # the example's data, cut to a tenth so that the test takes seconds
    small = Splits(
        Split(s.train.images[:800], s.train.labels[:800]),
        Split(s.valid.images[:200], s.valid.labels[:200]),
        Split(s.test.images[:200], s.test.labels[:200]),
        name="mnist-sample-small",
    )
    monkeypatch.setattr(binarynet.training.trainer, "load_splits", lambda cfg: small)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    match = re.search(r"test error (\d+\.\d\d)%", out)
    assert match, out
    error = float(match.group(1)) / 100
    assert error < 0.5  # trained: far better than chance (90 %)
    predicted, labels = namespace["predicted"], small.test.labels
    assert error == pytest.approx(np.mean(predicted != labels), abs=5e-5)
    assert (tmp_path / "runs" / "api" / "best.pt").is_file()
    assert (tmp_path / "runs" / "api.bnn").is_file()
