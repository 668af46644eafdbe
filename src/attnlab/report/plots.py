"""Figures written to files: headless, deterministic, labelled."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure

from ..formula import ScalingRow

__all__ = ["plot_scaling", "save_figure", "show_image"]


def show_image(ax, x, mean, std) -> None:
    """A normalized image (C, H, W) drawn on ``ax``, brought back to [0, 1] by ``mean`` / ``std``."""
    img = x.detach().cpu().float() * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    img = img.clamp(0, 1).permute(1, 2, 0).numpy()  # matplotlib takes arrays, not tensors
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=1)


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
