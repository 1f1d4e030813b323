"""binarynet.training.plots: the figures of a run, on synthetic histories and checkpoints."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from binarynet.cli import main
from binarynet.training.checkpoint import save_checkpoint
from binarynet.training.models import mnist_mlp
from binarynet.training.plots import (
    SIGN_FLIPS_KEY,
    learning_curves_figure,
    plot_run,
    plot_sign_flips,
    plot_weight_histograms,
    read_history,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _history(epochs: int, flips_from: int | None = 1) -> list[dict]:
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "lr": 1e-3}
        for split in ("train", "valid", "test"):
            row[f"{split}_error"] = 0.5 / e
            row[f"{split}_loss"] = 1.0 / e
        if flips_from is not None and e >= flips_from:
            row[SIGN_FLIPS_KEY] = {"2": 0.2 / e, "5": 0.0 if e == 3 else 0.1 / e}
        rows.append(row)
    return rows


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG


def test_weight_histograms(tmp_path):
    rng = np.random.default_rng(0)
    weights = {
        "2": rng.uniform(-1, 1, (8, 16)),
        "5": np.clip(rng.normal(0, 1, (10, 8)), -1, 1),
    }
    path = plot_weight_histograms(weights, tmp_path / "w.png", title="t")
    assert _is_png(path)
    with pytest.raises(ValueError, match="no layers"):
        plot_weight_histograms({}, tmp_path / "x.png")


def test_sign_flips(tmp_path):
    path = plot_sign_flips(_history(4, flips_from=2), tmp_path / "f.png")
    assert _is_png(path)
    with pytest.raises(ValueError, match="did not record"):
        plot_sign_flips(_history(3, flips_from=None), tmp_path / "g.png")


def test_read_history(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _history(2)) + "\n")
    assert [r["epoch"] for r in read_history(path)] == [1, 2]
    path.write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        read_history(path)
    with pytest.raises(FileNotFoundError):
        read_history(tmp_path / "none.jsonl")


def _run_dir(tmp_path, flips: bool):
    run = tmp_path / "run"
    run.mkdir()
    history = _history(3, flips_from=1 if flips else None)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    config = {"model": "mnist-mlp", "model_kwargs": {"hidden": 8, "depth": 1, "in_features": 16}}
    model = mnist_mlp(hidden=8, depth=1, in_features=16)
    save_checkpoint(
        run / "best.pt", {"config": config, "model_state": model.state_dict(), "epoch": 2}
    )
    return run


def test_plot_run(tmp_path):
    run = _run_dir(tmp_path, flips=True)
    out = plot_run(run, tmp_path / "figs")
    assert set(out) == {"curves", "sign_flips", "weights"}
    for name in ("curves", "sign_flips", "weights"):
        assert _is_png(out[name])


def test_plot_run_without_flips_and_cli(tmp_path, capsys):
    run = _run_dir(tmp_path, flips=False)
    assert main(["plot", str(run)]) == 0
    out = capsys.readouterr().out
    assert "sign_flips: skipped" in out
    assert _is_png(run / "curves.png") and _is_png(run / "weights.png")
    assert main(["plot", str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize(
    "errors",
    [[0.5, 0.3, 0.2, 0.18], [0.02, 0.015, 0.012, 0.011], [0.9, 0.1, 0.01, 0.002]],
)
def test_learning_curves_label_the_log_axis_in_percent(errors):
    scale = {"train": 1.0, "valid": 1.1, "test": 1.2}
    history = [
        {
            "epoch": i + 1,
            **{f"{split}_error": e * k for split, k in scale.items()},
            **{f"{split}_loss": 1.0 / (i + 1) for split in scale},
        }
        for i, e in enumerate(errors)
    ]
    fig = learning_curves_figure(history)
    fig.canvas.draw()
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    labelled = {}
    for minor in (False, True):
        ticks, labels = ax.yaxis.get_ticklocs(minor=minor), ax.get_yticklabels(minor=minor)
        for tick, label in zip(ticks, labels, strict=True):
            if low <= tick <= high and label.get_text():
                labelled[float(tick)] = label.get_text()
    assert len(labelled) >= 2, labelled
    for tick, text in labelled.items():  # "20%" at 20 (the values are percentages already)
        assert re.fullmatch(r"\d+(\.\d+)?%", text), labelled
        assert float(text[:-1]) == pytest.approx(tick, rel=1e-3)
