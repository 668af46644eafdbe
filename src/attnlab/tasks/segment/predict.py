"""``attnlab predict``'s steps for one plane: the model's channels, then the whole plane segmented
(overlapping tiles) and its foreground split into instances. Reading files: ``inputs.py``; writing:
``outputs.py``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ...models.tiling import tiled_logits
from .instances import split_instances

__all__ = ["to_model_channels", "segment_image"]


def to_model_channels(chw: np.ndarray, in_chans: int, path: Path) -> np.ndarray:
    """An image (C, H, W) with the model's ``in_chans`` channels: colour to grey by the channels' mean, grey
    repeated into every channel; other mismatches are refused naming the file."""
    channels = chw.shape[0]
    if channels == in_chans:
        return chw
    if in_chans == 1:
        return chw.mean(axis=0, keepdims=True)
    if channels == 1:
        return np.repeat(chw, in_chans, 0)
    raise ValueError(f"{path}: {channels} channels, the model takes {in_chans}")


@torch.no_grad()
def segment_image(
    model: nn.Module,
    x: Tensor,
    predict: Callable[[Tensor], Tensor],
    *,
    tile: int,
    overlap: int,
    min_size: int,
    split_h: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(class indices (H, W), instance labels (H, W) of the cleaned foreground) of one image (1, C, H, W);
    ``predict``: logits -> class indices (the label scheme's)."""
    classes = predict(tiled_logits(model, x, tile, overlap))[0].numpy()
    return classes, split_instances(classes > 0, min_size=min_size, h=split_h)
