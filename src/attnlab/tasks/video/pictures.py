"""The video task's picture: clips as strips of frames, the backbone's last spatial attention map over each
frame (when its modules have one), and the temporal head's frame weights under them."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import Dataset

from ...report.maps import capture_gates, spatial_maps
from ...report.plots import save_figure, show_image

__all__ = ["clip_figure", "plot_clips"]


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


@torch.no_grad()
def clip_figure(model: nn.Module, clips: Dataset, meta: dict, count: int, title: str) -> Figure:
    """For each of the first ``count`` clips: a row of its T frames (true and predicted class on the left), a row
    with the backbone's last spatial map over them (when there is one), and a bar of the frame weights."""
    items = [clips[i] for i in range(min(count, len(clips)))]
    x = torch.stack([c for c, _ in items])  # (B, T, C, H, W)
    labels = [y for _, y in items]
    with capture_gates(model.backbone) as maps:
        logits, weights = model.forward_with_frame_weights(x)
    predicted = logits.argmax(1).tolist()
    spatial = spatial_maps(maps)
    last = list(spatial.values())[-1] if spatial else None  # (B·T, 1, h, w)
    B, T = x.shape[:2]
    mean, std, classes = meta["mean"], meta["std"], meta["classes"]
    rows_per_clip = 3 if last is not None else 2
    fig = Figure(figsize=(1.2 * T + 1.2, 1.25 * rows_per_clip * B), layout="constrained")
    grid = fig.add_gridspec(rows_per_clip * B, T, height_ratios=([1, 1, 0.5] if last is not None else [1, 0.5]) * B)
    for b in range(B):
        row = rows_per_clip * b
        for t in range(T):
            ax = fig.add_subplot(grid[row, t])
            show_image(ax, x[b, t], mean, std)
            _bare(ax)
            if t == 0:
                mark = "✓" if predicted[b] == labels[b] else "✗"
                ax.set_ylabel(f"true {classes[labels[b]]}\npred {classes[predicted[b]]} {mark}", fontsize=7)
            if last is not None:
                ax = fig.add_subplot(grid[row + 1, t])
                m = F.interpolate(last[b * T + t][None], size=x.shape[-2:], mode="bilinear", align_corners=False)
                show_image(ax, x[b, t], mean, std)
                ax.imshow(m[0, 0].numpy(), cmap="jet", alpha=0.45)
                _bare(ax)
                if t == 0:
                    ax.set_ylabel(list(spatial)[-1].rsplit(".", 1)[0], fontsize=6)
        ax = fig.add_subplot(grid[row + rows_per_clip - 1, :])
        ax.bar(range(T), weights[b].tolist(), color="tab:orange")
        ax.set_xlim(-0.5, T - 0.5)
        ax.set_ylim(0, max(0.3, float(weights[b].max()) * 1.1))
        ax.set_xticks(range(T))
        ax.tick_params(labelsize=6)
        ax.set_ylabel("frame\nweight", fontsize=6)
    fig.suptitle(title, fontsize=9)
    return fig


def plot_clips(model: nn.Module, clips: Dataset, meta: dict, out: Path, count: int, title: str) -> Path:
    """``clip_figure`` written to ``out``."""
    return save_figure(clip_figure(model, clips, meta, count, title), out)
