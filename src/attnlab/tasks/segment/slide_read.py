"""Reading a whole slide lazily, and the normalization of the whole image from a subsample of it.

``open_slide``: a TIFF's first series as a lazily sliced array; ``slide_levels``: the percentiles of a strided
subsample, read band by band; ``slide_input``: a window as read -> the model's input, normalized with them;
``release``: drop the pages a memory-mapped read brought in, so they do not count in the process's RSS.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from .files import to_chw

if TYPE_CHECKING:
    import zarr

__all__ = ["open_slide", "slide_levels", "slide_input", "release"]


_BAND_PIXELS = 1 << 24  # slide pixels slide_levels reads at once (whole rows, then every s-th of them kept)


def open_slide(path: Path) -> np.memmap | zarr.Array:
    """The first series of a TIFF, (H, W) or (H, W, C), read lazily: a read-only ``np.memmap`` when its pixels
    are stored uncompressed in one piece, else a zarr array over tifffile's store (tiles decoded when sliced)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape, contiguous = series.axes, series.shape, series.dataoffset is not None
    except Exception as e:  # noqa: BLE001  (any reader failure is a file the user must fix)
        raise ValueError(f"{path}: not a readable TIFF ({type(e).__name__}: {e})") from None
    if axes not in ("YX", "YXS"):
        raise ValueError(f"{path}: axes {axes}, shape {shape}; a slide is one plane, YX or YXS (samples last)")
    if contiguous:
        return tifffile.memmap(path, mode="r")
    try:
        import zarr
    except ImportError:
        raise ValueError(
            f"{path}: a compressed or tiled TIFF is read tile by tile through zarr, not installed; "
            'pip install "attnlab[segment]"'
        ) from None
    return zarr.open(tifffile.imread(path, aszarr=True, series=0, level=0), mode="r")


def slide_levels(
    array,
    low: float = 1.0,
    high: float = 99.8,
    max_pixels: int = 4_000_000,
    *,
    channels: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel percentiles (lo, hi), each (C, 1, 1) float32 as ``normalize_percentiles`` takes them, of every
    s-th pixel of every s-th row, s the smallest stride leaving at most ``max_pixels`` (s = 1: exactly the whole
    image's), read band by band. ``channels``: a band as read, (h, w) or (h, w, C) -> (C', h, w), the model's
    channel conversion (default: channels first), so that the levels are those of the image the model sees."""
    if max_pixels < 1:
        raise ValueError(f"max_pixels: expected at least 1, got {max_pixels}")
    channels = channels or to_chw
    h, w = array.shape[:2]
    stride = max(1, math.isqrt(h * w // max_pixels))
    while -(-h // stride) * -(-w // stride) > max_pixels:
        stride += 1
    # slide rows per read (a multiple of the stride): a mapped slide's pages around every row read stay in this
    # process's RSS until released, so the band bounds the memory, not only the pixels kept
    band = max(1, _BAND_PIXELS // (w * stride)) * stride
    parts = []
    for top in range(0, h, band):
        parts.append(channels(np.asarray(array[top : top + band : stride, ::stride])).astype(np.float32))
        release(array)
    sample = np.concatenate(parts, axis=1)  # (C, ceil(H / s), ceil(W / s))
    lo = np.percentile(sample, low, axis=(1, 2), keepdims=True)
    hi = np.percentile(sample, high, axis=(1, 2), keepdims=True)
    return lo, hi


def slide_input(
    levels: tuple[np.ndarray, np.ndarray], *, channels: Callable[[np.ndarray], np.ndarray] | None = None
) -> Callable[[np.ndarray], Tensor]:
    """A ``to_input`` for ``segment_slide``: a window as read, (h, w) or (h, w, C) -> (1, C', h, w) float32,
    normalized by ``levels`` (``slide_levels``') exactly as ``normalize_percentiles`` does the whole image."""
    lo, hi = levels
    scale = np.maximum(hi - lo, 1e-6)
    channels = channels or to_chw

    def to_input(raw: np.ndarray) -> Tensor:
        return torch.from_numpy((channels(raw).astype(np.float32) - lo) / scale)[None]

    return to_input


def release(array) -> None:
    """Drop the pages of a memory-mapped slide read so far from this process. They are clean file pages (the kernel
    keeps them cached, and may drop them anyway), but they count in its RSS, which would grow to the file's size."""
    mapping = getattr(array, "_mmap", None)  # np.memmap's; None for zarr and in-memory arrays
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)
