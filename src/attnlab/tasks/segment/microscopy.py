"""Microscope-image intensities: percentile normalization, and the perturbations the segmentation task is
made for (uneven illumination, low contrast), as training augmentation and as fixed test conditions.

Augmentations draw from torch's global generator, so ``EpochSeeded`` makes them a function of
(seed, epoch, sample index).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "normalize_percentiles",
    "illumination_gradient",
    "low_contrast",
    "TEST_CONDITIONS",
    "augment_intensity",
    "augment_geometry",
]


def normalize_percentiles(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """(x − p_low) / (p_high − p_low) per channel, as float32 (CSBDeep's normalization, its defaults)."""
    x = image.astype(np.float32)
    if x.ndim == 2:
        x = x[None]
    lo = np.percentile(x, low, axis=(1, 2), keepdims=True)
    hi = np.percentile(x, high, axis=(1, 2), keepdims=True)
    return (x - lo) / np.maximum(hi - lo, 1e-6)


def illumination_gradient(image: np.ndarray, start: float = 0.25, end: float = 1.0) -> np.ndarray:
    """Intensities × a left-to-right ramp from ``start`` to ``end`` (the ``gradient`` test condition: ×0.25 → ×1)."""
    ramp = np.linspace(start, end, image.shape[-1], dtype=np.float64)
    return image.astype(np.float64) * ramp


def low_contrast(image: np.ndarray, contrast: float = 0.3, noise: float = 0.03, seed: int = 0) -> np.ndarray:
    """Contrast cut to ``contrast`` around the mean, plus Gaussian noise of ``noise`` × the 1-99.8 % range."""
    x = image.astype(np.float64)
    spread = np.percentile(x, 99.8) - np.percentile(x, 1)
    rng = np.random.default_rng(seed)
    return x.mean() + contrast * (x - x.mean()) + rng.normal(0, noise * spread, x.shape)


# The fixed test conditions: name -> perturbation of the raw image (before normalization).
TEST_CONDITIONS = {
    "clean": lambda x: x.astype(np.float64),
    "gradient": illumination_gradient,
    "low_contrast": low_contrast,
}


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand(()).item()


def augment_intensity(x: Tensor) -> Tensor:
    """A normalized crop (C, h, w) under random microscope conditions, each with probability 1/2:
    a smooth multiplicative gradient in a random direction (×0.2-1 across the crop), vignetting (a radial
    fall-off to ×0.4-1 at the corners), gamma 0.6-1.6, contrast ×0.3-1 around the mean, Gaussian noise."""
    c, h, w = x.shape
    if torch.rand(()) < 0.5:  # uneven illumination: a linear ramp along a random direction
        angle = _uniform(0, 2 * math.pi)
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        t = (math.cos(angle) * xx + math.sin(angle) * yy) / math.sqrt(2) * 0.5 + 0.5  # in [0, 1]
        low = _uniform(0.2, 1.0)
        x = x * (low + (1 - low) * t)
    if torch.rand(()) < 0.5:  # vignetting
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        edge = _uniform(0.4, 1.0)
        x = x * (1 - (1 - edge) * (xx.square() + yy.square()) / 2)
    if torch.rand(()) < 0.5:
        x = x.clamp(min=0).pow(_uniform(0.6, 1.6))
    if torch.rand(()) < 0.5:
        mean = x.mean()
        x = mean + _uniform(0.3, 1.0) * (x - mean)
    if torch.rand(()) < 0.5:
        x = x + _uniform(0.0, 0.08) * torch.randn(x.shape)
    return x


def augment_geometry(image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The same random flips and 90° rotation of an image (C, h, w) and its mask (h, w)."""
    if torch.rand(()) < 0.5:
        image, mask = image.flip(-1), mask.flip(-1)
    if torch.rand(()) < 0.5:
        image, mask = image.flip(-2), mask.flip(-2)
    k = int(torch.randint(4, ()).item())
    if k and image.shape[-1] == image.shape[-2]:
        image, mask = image.rot90(k, (-2, -1)), mask.rot90(k, (-2, -1))
    return image.contiguous(), mask.contiguous()
