"""Labels that follow an object through a z-stack or a time-lapse.

Each plane is segmented on its own; then, plane after plane, its objects are paired one-to-one with the
previous plane's by IoU (Hungarian matching, scipy) and a pair whose IoU reaches ``threshold`` shares the
previous object's label; the others get new labels. Cellpose's ``--stitch_threshold`` links planes the same
way (its default use: 0.25), though it lets two objects take one label where this pairing is one-to-one.
"""

from __future__ import annotations

import numpy as np

from .instances import iou_matrix

__all__ = ["link_planes"]


def link_planes(planes: np.ndarray, threshold: float = 0.25) -> np.ndarray:
    """Instance labels (P, H, W), each plane's numbered on its own -> labels consistent along P (int64)."""
    from scipy.optimize import linear_sum_assignment

    if not 0 < threshold <= 1:
        raise ValueError(f"--stitch-threshold: expected an IoU in (0, 1], got {threshold}")
    out = np.zeros(planes.shape, np.int64)
    next_label = 1
    for p, plane in enumerate(planes):
        ids = np.unique(plane[plane > 0])  # this plane's labels, in order (iou_matrix's rows)
        new = dict.fromkeys(ids.tolist(), 0)
        if p and ids.size and out[p - 1].any():
            before = np.unique(out[p - 1][out[p - 1] > 0])  # iou_matrix's columns
            iou = iou_matrix(plane, out[p - 1])
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                if iou[r, c] >= threshold:
                    new[int(ids[r])] = int(before[c])
        for old in ids.tolist():
            if not new[old]:
                new[old], next_label = next_label, next_label + 1
            else:
                next_label = max(next_label, new[old] + 1)
        lookup = np.zeros(int(plane.max()) + 1, np.int64)
        for old, value in new.items():
            lookup[old] = value
        out[p] = lookup[plane]
    return out
