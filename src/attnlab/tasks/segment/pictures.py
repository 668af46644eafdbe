"""A segmentation run drawn: each test condition's image, the true and predicted masks (true positives,
false positives, false negatives in three colours), and the attention gates' maps of each level."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ...models.tiling import tiled_logits
from ...report.maps import capture_gates
from ...report.plots import save_figure

__all__ = ["error_overlay", "plot_segmentation"]

COLOURS = {"tp": (0.1, 0.8, 0.2), "fp": (0.95, 0.2, 0.1), "fn": (0.1, 0.4, 1.0)}


def error_overlay(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """RGBA (H, W, 4): true positives green, false positives red, false negatives blue, the rest clear."""
    rgba = np.zeros((*pred.shape, 4), np.float32)
    for key, where in (("tp", pred & true), ("fp", pred & ~true), ("fn", ~pred & true)):
        rgba[where, :3] = COLOURS[key]
        rgba[where, 3] = 0.55
    return rgba


def plot_segmentation(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    conditions: list[str],
    *,
    predict: Callable[[Tensor], Tensor],
    tile: int,
    overlap: int,
    path: str | Path,
    title: str,
) -> Path:
    """Rows: test conditions. Columns: image, errors overlaid on the image, one gate map per U-Net level.

    ``images`` (K, C, H, W) under the K ``conditions``, ``labels`` (H, W); ``predict``: logits -> class indices
    (the label scheme's), on logits of tiles of side ``tile`` overlapping by ``overlap``. With several classes
    the errors are those of the foreground (every class against the background)."""
    model.eval()
    true = (labels > 0).numpy()
    rows = []
    for c, name in enumerate(conditions):
        x = images[c : c + 1]
        with torch.no_grad(), capture_gates(model) as maps:
            pred = (predict(tiled_logits(model, x, tile, overlap))[0] > 0).numpy()
        if x.shape[-1] > tile or x.shape[-2] > tile:  # tiles: take the gates of one whole pass
            with torch.no_grad(), capture_gates(model) as maps:
                model(x)
        gates = {k: v[0, 0].float().numpy() for k, v in maps.items() if v.dim() == 4 and v.shape[1] == 1}
        rows.append((name, x[0].mean(0).numpy(), pred, gates))
    levels = max(len(r[3]) for r in rows)
    cols = 2 + levels
    fig = Figure(figsize=(3 * cols, 3 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for (name, image, pred, gates), row in zip(rows, axes, strict=True):
        row[0].imshow(image, cmap="gray")
        row[0].set_title(f"{name}", fontsize=9)
        row[1].imshow(image, cmap="gray")
        row[1].imshow(error_overlay(pred, true))
        dice = 2 * (pred & true).sum() / max(pred.sum() + true.sum(), 1)
        row[1].set_title(f"TP green, FP red, FN blue\nDice {dice:.3f}", fontsize=8)
        for j, (gname, alpha) in enumerate(gates.items(), start=2):
            row[j].imshow(image, cmap="gray")
            row[j].imshow(alpha, cmap="jet", alpha=0.5, vmin=0, vmax=1)
            row[j].set_title(f"{gname.removesuffix('.gate')}\nα {alpha.shape[0]}×{alpha.shape[1]}", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in row[2 + len(gates) :]:
            ax.set_visible(False)
    fig.suptitle(title)
    return save_figure(fig, path)
