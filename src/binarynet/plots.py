"""PNG figures of a training run (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_learning_curves"]


def plot_learning_curves(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Error rates (train / validation / test, %) and losses per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for split in ("train", "valid", "test"):
        ax_err.plot(epochs, [100 * row[f"{split}_error"] for row in history], label=split)
        ax_loss.plot(epochs, [row[f"{split}_loss"] for row in history], label=split)
    ax_err.set(xlabel="epoch", ylabel="error (%)", yscale="log", title="error rate")
    ax_loss.set(xlabel="epoch", ylabel="square hinge loss", yscale="log", title="loss")
    for ax in (ax_err, ax_loss):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
