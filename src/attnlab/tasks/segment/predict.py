"""``attnlab predict`` for a segmentation run, as small steps: read a file into the model's input, segment it
whole (overlapping tiles), split the foreground into instances, write the mask PNG and the instance TIFF."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ...models.tiling import tiled_logits
from .files import read_array, to_chw
from .instances import split_instances
from .microscopy import normalize_percentiles

__all__ = ["to_model_channels", "read_input", "segment_image", "write_mask", "write_instances"]


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


def read_input(path: Path, in_chans: int) -> Tensor:
    """An image file -> the model's input (1, in_chans, H, W), normalized as the training images."""
    chw = to_model_channels(to_chw(read_array(path)), in_chans, path)
    return torch.from_numpy(normalize_percentiles(chw))[None]


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


def write_mask(mask: np.ndarray, path: Path) -> Path:
    """An 8-bit PNG of ``mask`` (H, W); its folder is made when missing."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8)).save(path)
    return path


def write_instances(labels: np.ndarray, path: Path) -> Path:
    """Instance labels (H, W) as a 16-bit TIFF (32-bit from 65536 instances on)."""
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, labels.astype(np.uint16 if labels.max() < 65536 else np.uint32))
    return path
