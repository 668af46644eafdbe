"""curves.png: loss and accuracy per epoch of a run, from its metrics history."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .plots import save_figure

__all__ = ["plot_curves"]


def plot_curves(history: list[dict], path: str | Path, title: str) -> Path:
    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, key, label in ((loss_ax, "loss", "loss"), (acc_ax, "acc", "accuracy")):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", label="train")
        ax.plot(epochs, [r[f"val_{key}"] for r in history], "s-", label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label.capitalize())
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, path)
