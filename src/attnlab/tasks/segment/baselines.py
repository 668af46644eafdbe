"""The classical baselines of the segmentation task, measured on the same test images as the network: Otsu's
threshold (one class) and multi-Otsu's thresholds (several), both of the image's mean over its channels."""

from __future__ import annotations

import numpy as np

__all__ = ["otsu_foreground", "multi_otsu_classes"]


def otsu_foreground(image: np.ndarray) -> np.ndarray:
    """The classical baseline: pixels above Otsu's threshold (scikit-image) of a (C, H, W) image's mean."""
    from skimage.filters import threshold_otsu

    gray = image.mean(axis=0) if image.ndim == 3 else image
    return gray > threshold_otsu(gray)


def multi_otsu_classes(image: np.ndarray, classes: int) -> np.ndarray:
    """The classical baseline for ``classes`` classes and the background: multi-Otsu's ``classes`` thresholds
    (scikit-image) of a (C, H, W) image's mean; class k the k-th band of brightness (0, the darkest, background)."""
    from skimage.filters import threshold_multiotsu

    gray = image.mean(axis=0)
    return np.digitize(gray, threshold_multiotsu(gray, classes=classes + 1)).astype(np.int64)
