"""compare.png: the monitored metric against GFLOPs, one point per compared row, error bars over seeds."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .plots import save_figure

__all__ = ["plot_comparison"]


def plot_comparison(rows: list[dict], path: str | Path, title: str) -> Path:
    """``rows``: engine.compare.aggregate's (variant, monitor, test_mean, test_std, gflops)."""
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    for r in rows:
        if not r["runs"]:  # a classical baseline: no network, drawn as a level to beat
            ax.axhline(r["test_mean"], linestyle="--", color="gray", label=r["variant"])
            continue
        ax.errorbar(r["gflops"], r["test_mean"], yerr=r["test_std"], fmt="o", capsize=4, label=r["variant"])
        verdict = r.get("verdict", "")
        shown = r["variant"] + (f" ({verdict})" if verdict and verdict not in ("reference", "—") else "")
        ax.annotate(shown, (r["gflops"], r["test_mean"]), textcoords="offset points", xytext=(6, 4))
    ax.set_xlabel("GFLOPs per sample (torch.utils.flop_counter)")
    ax.set_ylabel(f"{rows[0]['metric']} (best checkpoint on validation), mean ± std over seeds")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return save_figure(fig, path)
