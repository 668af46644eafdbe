"""Whole-image inference by overlapping tiles, for images of any size.

Tiles of ``tile`` × ``tile`` pixels step by ``tile − overlap``; each tile's logits are weighted by a ramp
that falls towards the tile's edges (where a convolution sees padding, not the image), and the weighted
sum is divided by the summed weights. An image no larger than one tile is one forward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["tile_starts", "ramp", "tile_weight", "tiled_logits"]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, size) with tiles of ``tile`` overlapping by at least ``overlap``."""
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    return [*starts, size - tile]


def ramp(n: int, overlap: int, device) -> Tensor:
    """1 in the middle, rising linearly over ``overlap`` pixels from each end (never 0)."""
    i = torch.arange(n, device=device, dtype=torch.float32)
    edge = torch.minimum(i + 1, n - i) / max(1, overlap)
    return edge.clamp(max=1.0)


def tile_weight(logits: Tensor, overlap: int) -> Tensor:
    """The blend weight (h, w) of a tile's logits (…, h, w): the ramps of its rows and columns, multiplied."""
    h, w = logits.shape[-2:]
    return (ramp(h, overlap, logits.device)[:, None] * ramp(w, overlap, logits.device)[None, :]).to(logits.dtype)


@torch.no_grad()
def tiled_logits(model: nn.Module, image: Tensor, tile: int = 256, overlap: int = 32) -> Tensor:
    """``model``'s logits for a whole image (B, C, H, W) -> (B, K, H, W), tile by tile."""
    if not 0 <= overlap < tile:
        raise ValueError(f"--overlap: expected 0 <= overlap < tile ({tile}), got {overlap}")
    h, w = image.shape[-2:]
    if h <= tile and w <= tile:
        return model(image)
    out = weight = None
    for top in tile_starts(h, tile, overlap):
        for left in tile_starts(w, tile, overlap):
            patch = image[..., top : top + tile, left : left + tile]
            logits = model(patch)
            ph, pw = logits.shape[-2:]
            wgt = tile_weight(logits, overlap)
            if out is None:
                out = logits.new_zeros((*logits.shape[:2], h, w))
                weight = logits.new_zeros((h, w))
            out[..., top : top + ph, left : left + pw] += logits * wgt
            weight[top : top + ph, left : left + pw] += wgt
    return out / weight
