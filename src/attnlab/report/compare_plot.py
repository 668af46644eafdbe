"""compare.png: accuracy against GFLOPs, one point per attention module, error bars over seeds."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .plots import save_figure

__all__ = ["plot_comparison"]


def plot_comparison(rows: list[dict], path: str | Path, title: str) -> Path:
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    for r in rows:
        ax.errorbar(r["gflops"], 100 * r["acc_mean"], yerr=100 * r["acc_std"], fmt="o", capsize=4, label=r["attention"])
        ax.annotate(r["attention"], (r["gflops"], 100 * r["acc_mean"]), textcoords="offset points", xytext=(6, 4))
    ax.set_xlabel("GFLOPs per image (torch.utils.flop_counter)")
    ax.set_ylabel("test top-1 accuracy (%), mean ± std over seeds")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return save_figure(fig, path)
