"""Segmented objects one by one: each instance as a small crop of its own pixels and where the crop lies in the
image. Every per-object output (ROIs, GeoJSON, measurements) reads them, whether they come from one label
image in memory (``objects_of``) or block by block from a whole slide (``slide.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["Object", "objects_of", "paste"]


@dataclass(frozen=True)
class Object:
    """One instance: ``mask`` (h, w) bool, its pixels inside its bounding box, whose top-left pixel is
    (``top``, ``left``) in the image; ``label`` its number in the label image; ``plane`` its z or t index in a
    stack (None for one image)."""

    label: int
    top: int
    left: int
    mask: np.ndarray
    plane: int | None = None

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def box(self) -> tuple[slice, slice]:
        """The bounding box as the image's (rows, columns) slices."""
        h, w = self.mask.shape
        return slice(self.top, self.top + h), slice(self.left, self.left + w)


def objects_of(labels: np.ndarray, *, top: int = 0, left: int = 0, plane: int | None = None) -> Iterator[Object]:
    """The instances of a label image (H, W) (0 the background) in label order; (``top``, ``left``): where
    ``labels`` lies in a larger image."""
    from scipy import ndimage as ndi

    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:  # a label number with no pixels
            continue
        rows, cols = box
        yield Object(index, top + rows.start, left + cols.start, labels[box] == index, plane)


def paste(labels: np.ndarray, obj: Object, *, top: int = 0, left: int = 0) -> None:
    """Write ``obj``'s label into ``labels`` (a window of the image whose top-left pixel is (``top``, ``left``)),
    clipped to the window."""
    h, w = labels.shape
    r0, c0 = obj.top - top, obj.left - left
    r1, c1 = r0 + obj.mask.shape[0], c0 + obj.mask.shape[1]
    a0, b0, a1, b1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
    if a0 >= a1 or b0 >= b1:
        return
    window = obj.mask[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0]
    labels[a0:a1, b0:b1][window] = obj.label
