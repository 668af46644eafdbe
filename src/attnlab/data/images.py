"""Reading a user's image files of any mode (grayscale, RGB, RGBA, palette, 16-bit, float) into tensors, upright
as their EXIF orientation says (phone photos), and the evaluation transform that brings uint8 images (or video
frames) to a run's input. Training (``imagefolder``) and predict read files through the same ``read_image``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torchvision.transforms import v2

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "read_image", "eval_transform"]

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # of torchvision's weights


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Integer images wider than 8 bits by their full range (16-bit: / 257), float ones by min-max."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return (a.astype(np.float32) / 257).round().astype(np.uint8)
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    return np.zeros(a.shape, np.uint8) if hi <= lo else ((a - lo) / (hi - lo) * 255).round().astype(np.uint8)


def read_image(path: str | Path, channels: int) -> Tensor:
    """``path`` as a uint8 tensor (channels, H, W): 1 = luminance, 3 = RGB (alpha dropped, gray repeated); 16-bit
    and float images scaled to 8 bits over their range (``_to_uint8``: PIL's own conversion clips them at 255);
    turned upright by the EXIF orientation tag where there is one.

    An unreadable or missing file raises ``ValueError`` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)  # a camera's rotation kept as a tag: the pixels as seen
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                gray = _to_uint8(np.asarray(im))
                im = Image.fromarray(gray)  # uint8 (H, W): mode "L"
            im = im.convert("L" if channels == 1 else "RGB")
            a = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None
    t = torch.from_numpy(a.copy())
    return t[None] if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def eval_transform(size: int, mean, std, resize: int | None = None) -> v2.Compose:
    """uint8 images (…, C, H, W) -> float: shorter side to ``resize`` (default ``size``), center crop ``size``,
    normalized by ``mean`` and ``std``."""
    return v2.Compose(
        [
            v2.Resize(resize or size, antialias=True),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )
