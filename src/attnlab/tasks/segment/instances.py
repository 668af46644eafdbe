"""Instances from a foreground map, and instance matching (the Data Science Bowl's and StarDist's metric).

split_instances: foreground -> clean-up (small objects removed, holes filled) -> touching objects separated
by a watershed of the distance transform, seeded at its h-maxima (one seed per nucleus, even when two touch).
match_counts: true and predicted instances paired one-to-one by IoU (Hungarian matching, scipy); at each IoU
threshold a pair counts as a true positive when its IoU reaches the threshold.
"""

from __future__ import annotations

import numpy as np

__all__ = ["THRESHOLDS", "split_instances", "iou_matrix", "match_counts", "f1_scores"]

THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5, 0.55, …, 0.95
_REACH = 5  # px: the distance map's smoothing (σ = 1, truncated at 4σ) reaches 4 px past a component


def split_instances(foreground: np.ndarray, *, min_size: int = 16, h: float = 2.0) -> np.ndarray:
    """Instance labels (H, W) int64 of a boolean foreground map.

    ``min_size``: objects (and holes) smaller than this many pixels are removed (filled).
    ``h``: depth, in pixels of distance, a distance-transform maximum must have to seed its own instance.

    Seeds and watershed run per connected component, on its bounding box grown by the smoothing's reach: the
    same partition as one watershed of the whole image, 3× faster on a 2048² mask of nuclei, and local (a
    component's split depends on its surroundings within ``_REACH`` px only, so a whole slide split block by
    block gives the whole image's instances, ties between seeds included).
    """
    from scipy import ndimage as ndi
    from skimage.measure import label
    from skimage.morphology import h_maxima, remove_small_holes, remove_small_objects
    from skimage.segmentation import watershed

    mask = foreground.astype(bool)
    if min_size > 1:
        mask = remove_small_objects(mask, max_size=min_size - 1)
        mask = remove_small_holes(mask, max_size=min_size - 1)
    labels = np.zeros(mask.shape, np.int64)
    if not mask.any():
        return labels
    distance = ndi.distance_transform_edt(mask)
    distance = ndi.gaussian_filter(distance, 1.0)  # one seed per round object, not one per bump of its edge
    components = label(mask)
    found = 0
    for k, (rows, cols) in enumerate(ndi.find_objects(components), start=1):
        box = (
            slice(max(rows.start - _REACH, 0), rows.stop + _REACH),
            slice(max(cols.start - _REACH, 0), cols.stop + _REACH),
        )
        own, d = components[box] == k, distance[box]
        seeds = label(h_maxima(d, h) & own)
        split = watershed(-d, seeds, mask=own)
        rest = label(own & (split == 0))  # parts that got no seed (tiny or flat) keep their own label
        split = np.where(rest > 0, rest + split.max(), split)
        labels[box][own] = split[own] + found
        found += int(split.max())
    return labels


def iou_matrix(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every (true instance, predicted instance) pair, (n_true, n_pred), the instances in the order of
    their labels."""
    from skimage.segmentation import relabel_sequential

    t, _, _ = relabel_sequential(true.astype(np.int64))
    p, _, _ = relabel_sequential(pred.astype(np.int64))
    nt, np_ = int(t.max()) + 1, int(p.max()) + 1
    overlap = np.bincount((t * np_ + p).ravel(), minlength=nt * np_).reshape(nt, np_).astype(np.float64)
    area_t, area_p = overlap.sum(1, keepdims=True), overlap.sum(0, keepdims=True)
    iou = overlap / np.maximum(area_t + area_p - overlap, 1)
    return iou[1:, 1:]


def match_counts(true: np.ndarray, pred: np.ndarray, thresholds=THRESHOLDS) -> np.ndarray:
    """(len(thresholds), 3): true positives, false positives, false negatives at each IoU threshold."""
    from scipy.optimize import linear_sum_assignment

    iou = iou_matrix(true, pred)
    n_true, n_pred = iou.shape
    counts = np.zeros((len(thresholds), 3), np.float64)
    for i, thr in enumerate(thresholds):
        tp = 0
        if n_true and n_pred:
            valid = iou >= thr
            rows, cols = linear_sum_assignment(-(iou * valid))  # pairs maximizing the IoU among valid ones
            tp = int(valid[rows, cols].sum())
        counts[i] = (tp, n_pred - tp, n_true - tp)
    return counts


def f1_scores(counts: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) per threshold (1 when there is nothing to find and nothing found)."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 1.0)
