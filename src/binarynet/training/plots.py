"""PNG figures of a training run (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "SIGN_FLIPS_KEY",
    "learning_curves_figure",
    "plot_learning_curves",
    "plot_run",
    "plot_sign_flips",
    "plot_weight_histograms",
    "read_history",
]


def plot_learning_curves(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Error rates (train / validation / test, %) and losses per epoch, side by side."""
    plt = _pyplot()
    fig = learning_curves_figure(history)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves_figure(history: Sequence[dict[str, Any]]) -> Any:
    """The figure of :func:`plot_learning_curves` (a matplotlib Figure, not yet saved)."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for split in ("train", "valid", "test"):
        ax_err.plot(epochs, [100 * row[f"{split}_error"] for row in history], label=split)
        ax_loss.plot(epochs, [row[f"{split}_loss"] for row in history], label=split)
    ax_err.set(xlabel="epoch", ylabel="error (%)", yscale="log", title="error rate")
    _percent_log_axis(ax_err)
    ax_loss.set(xlabel="epoch", ylabel="square hinge loss", yscale="log", title="loss")
    for ax in (ax_err, ax_loss):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    return fig


def _percent_log_axis(ax: Any) -> None:
    """Label the log y axis of ``ax``, whose values are percentages, as "20%", "0.5%" where
    matplotlib would write "2×10¹", "5×10⁻¹" (it keeps choosing which ticks get a label)."""
    import numpy as np
    from matplotlib.ticker import LogFormatterSciNotation

    class PercentLogFormatter(LogFormatterSciNotation):
        def __call__(self, x: float, pos: int | None = None) -> str:
            if not super().__call__(x, pos):
                return ""  # a tick matplotlib leaves unlabelled
            return np.format_float_positional(x, precision=3, fractional=False, trim="-") + "%"

    ax.yaxis.set_major_formatter(PercentLogFormatter())
    ax.yaxis.set_minor_formatter(PercentLogFormatter(labelOnlyBase=False))


SIGN_FLIPS_KEY = "sign_flips"
"""Key of the per-epoch sign-flip fractions in a training history row:
``row["sign_flips"] = {layer name: fraction of that layer's latent weights whose sign changed
since the end of the previous epoch (the initialisation, for the first)}``."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_weight_histograms(
    weights: Mapping[str, Any], path: str | Path, bins: int = 100, title: str = ""
) -> Path:
    """Histograms of the latent (real-valued) weights W of each binary layer, one panel each.

    ``weights``: {layer name: array-like of latent weights}, in layer order. Each panel gives the
    layer's shape, the fraction of negative weights (bits of sign(W) equal to −1) and the fraction
    clipped at ±1 (saturated weights, which the clip of Algorithm 1 keeps from drifting).
    """
    import numpy as np

    if not weights:
        raise ValueError("plot_weight_histograms: no layers to plot (an empty mapping)")
    plt = _pyplot()
    n = len(weights)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False, constrained_layout=True
    )
    for ax, (name, w) in zip(axes.flat, weights.items(), strict=False):
        w = np.asarray(w, dtype=np.float32)
        flat = w.ravel()
        ax.hist(flat, bins=bins, range=(-1.0, 1.0), color="tab:blue")
        negative = float(np.mean(flat < 0)) if flat.size else 0.0
        clipped = float(np.mean(np.abs(flat) >= 1.0)) if flat.size else 0.0
        ax.set_title(
            f"{name} {list(w.shape)}\n{100 * negative:.1f} % negative, {100 * clipped:.1f} % at ±1",
            fontsize=9,
        )
        ax.set_yscale("log")
        ax.set_xlabel("latent weight")
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sign_flips(
    history: Sequence[dict[str, Any]], path: str | Path, key: str = SIGN_FLIPS_KEY
) -> Path:
    """The fraction of binary weights whose sign flipped during each epoch, per layer (log scale).

    Reads ``row[key]`` = {layer name: fraction} from the history rows that have it (see
    :data:`SIGN_FLIPS_KEY`); rows without it are skipped.
    """
    rows = [row for row in history if isinstance(row.get(key), Mapping)]
    if not rows:
        raise ValueError(
            f"plot_sign_flips: no history row has {key!r}; the training run did not record sign "
            "flips per epoch"
        )
    plt = _pyplot()
    layers: list[str] = []
    for row in rows:
        layers += [name for name in row[key] if name not in layers]
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for name in layers:
        points = [(row["epoch"], row[key][name]) for row in rows if name in row[key]]
        epochs = [e for e, _ in points]
        values = [max(float(v), 1e-7) for _, v in points]  # log scale: show 0 at the floor
        ax.plot(epochs, [100 * v for v in values], marker=".", label=name)
    ax.set(
        xlabel="epoch",
        ylabel="weights whose sign flipped (%)",
        yscale="log",
        title="sign flips of the binary weights per epoch",
    )
    _percent_log_axis(ax)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl`` (one JSON object per epoch)."""
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training history: {path} does not exist")
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {i}: not JSON ({exc})") from None
        if not isinstance(row, dict) or "epoch" not in row:
            raise ValueError(f"{path}, line {i}: expected an object with an 'epoch' field")
        rows.append(row)
    return rows


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path | str]:
    """Every figure of a training run directory, as PNG files in ``out_dir`` (default: the run).

    ``curves.png`` (learning curves, from ``metrics.jsonl``), ``weights.png`` (latent weights per
    binary layer, from ``best.pt``, else ``last.pt``) and ``sign_flips.png`` (from the history's
    :data:`SIGN_FLIPS_KEY`). Returns {figure: path written, or the reason it was skipped}.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    out = Path(out_dir) if out_dir is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Path | str] = {}
    history_path = run_dir / "metrics.jsonl"
    history = read_history(history_path) if history_path.is_file() else []
    if history:
        result["curves"] = plot_learning_curves(history, out / "curves.png")
        try:
            result["sign_flips"] = plot_sign_flips(history, out / "sign_flips.png")
        except ValueError as exc:
            result["sign_flips"] = f"skipped: {exc}"
    else:
        result["curves"] = result["sign_flips"] = f"skipped: no epochs in {history_path}"
    checkpoint = next(
        (run_dir / n for n in ("best.pt", "last.pt") if (run_dir / n).is_file()), None
    )
    if checkpoint is None:
        result["weights"] = f"skipped: no best.pt or last.pt in {run_dir}"
    else:
        from binarynet.training.checkpoint import read_checkpoint
        from binarynet.training.nn import binary_layers

        ckpt = read_checkpoint(checkpoint)
        names = {id(m): name for name, m in ckpt.model.named_modules()}
        weights = {
            names[id(layer)]: layer.weight.detach().float().numpy()
            for layer in binary_layers(ckpt.model)
        }
        epoch = ckpt.epoch
        title = f"latent weights, {checkpoint.name}" + (f" (epoch {epoch})" if epoch else "")
        result["weights"] = plot_weight_histograms(weights, out / "weights.png", title=title)
    return result
