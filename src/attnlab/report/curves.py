"""curves.png: the loss and every other metric per epoch of a run, train beside test, from its history."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .plots import save_figure

__all__ = ["metric_names", "plot_curves"]


def metric_names(history: list[dict]) -> list[str]:
    """The metrics in a run's records: ``loss`` first, then each name that has a ``val_`` column."""
    keys = history[0]
    names = [k.removeprefix("val_") for k in keys if k.startswith("val_")]
    return sorted(names, key=lambda n: (n != "loss", names.index(n)))


def plot_curves(history: list[dict], path: str | Path, title: str) -> Path:
    """One panel per metric (train and validation where both exist), against the epoch."""
    epochs = [r["epoch"] for r in history]
    names = metric_names(history)
    fig = Figure(figsize=(5 * len(names), 4), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        if f"train_{name}" in history[0]:
            ax.plot(epochs, [r[f"train_{name}"] for r in history], "o-", label="train")
        ax.plot(epochs, [r[f"val_{name}"] for r in history], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, path)
