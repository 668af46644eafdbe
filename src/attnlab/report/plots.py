"""Figures written to files: headless, deterministic, labelled."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from ..formula import ScalingRow

__all__ = ["plot_scaling", "save_figure"]


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_scaling(rows: Sequence[ScalingRow], path: str | Path) -> Path:
    """Three panels against d_k: score std, largest softmax weight, softmax-Jacobian norm; raw vs /√d_k."""
    d = [r.d_k for r in rows]
    fig = Figure(figsize=(13, 4), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (
        ("Std of the scores", "std", "std_raw", "std_scaled", "log"),
        ("Largest softmax weight", "mean max weight", "max_weight_raw", "max_weight_scaled", "linear"),
        (
            "Softmax Jacobian norm (gradient flow)",
            "mean ‖diag(p) − p pᵀ‖_F",
            "jacobian_raw",
            "jacobian_scaled",
            "linear",
        ),
    )
    for ax, (title, ylabel, raw, scaled, yscale) in zip(axes, panels, strict=True):
        ax.plot(d, [getattr(r, raw) for r in rows], "o-", color="tab:red", label="raw  q·k")
        ax.plot(d, [getattr(r, scaled) for r in rows], "s-", color="tab:blue", label="scaled  q·k / √d_k")
        ax.set_xscale("log", base=2)
        ax.set_yscale(yscale)
        ax.set_xlabel("d_k")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("Why attention divides by √d_k: unscaled scores saturate the softmax and its gradient vanishes")
    return save_figure(fig, path)
