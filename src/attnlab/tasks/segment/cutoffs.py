"""The foreground threshold, the smallest object and the split depth of touching nuclei, fitted to the user's
validation images after training, as StarDist's ``optimize_thresholds`` fits its probability and NMS
thresholds: the values with the best instance F1 at IoU 0.5 (ties: the better mean F1 over IoU 0.5-0.95,
then the paper defaults). A grid over threshold × split depth at the default minimum size, then the minimum
size at the best pair; a value the user gave (``--threshold``, ``--min-size``, ``--split-h``) stays fixed.

The fitted values replace the defaults only when their F1 beats the defaults' by more than two standard
errors, √(F(1 − F) / n) with n the validation objects (at least 1 / n): a validation image of 35 nuclei cannot
tell an F1 of 0.90 from 0.93, and values fitted on one did worse on the test images than the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from .instances import f1_scores, match_counts, split_instances

__all__ = ["Cutoffs", "DEFAULT_CUTOFFS", "GRID", "fit_cutoffs", "score_cutoffs", "noise_of"]


@dataclass(frozen=True)
class Cutoffs:
    """``threshold``: the foreground probability (one class; with several the argmax decides and it is
    unused); ``min_size``: objects and holes smaller than this many pixels are removed; ``split_h``: the depth
    of a distance-transform peak that seeds its own instance."""

    threshold: float = 0.5
    min_size: int = 16
    split_h: float = 2.0

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_CUTOFFS = Cutoffs()
GRID = {
    "threshold": (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8),
    "split_h": (1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
    "min_size": (0, 4, 8, 16, 32, 64, 128),
}


def score_cutoffs(
    foregrounds: Callable[[float], Sequence[np.ndarray]], truths: Sequence[np.ndarray], cutoffs: Cutoffs
) -> tuple[float, float]:
    """(F1 at IoU 0.5, mean F1 over 0.5-0.95) of the images' instances under ``cutoffs``, counts summed over
    the images; ``foregrounds(threshold)``: the images' foreground maps at a threshold."""
    counts = sum(
        match_counts(t, split_instances(f, min_size=cutoffs.min_size, h=cutoffs.split_h))
        for f, t in zip(foregrounds(cutoffs.threshold), truths, strict=True)
    )
    f1 = f1_scores(counts)
    return float(f1[0]), float(f1.mean())


def fit_cutoffs(
    foregrounds: Callable[[float], Sequence[np.ndarray]],
    truths: Sequence[np.ndarray],
    *,
    fixed: dict | None = None,
    thresholds: bool = True,
) -> tuple[Cutoffs, dict]:
    """(the fitted cutoffs, a record: each value tried and the F1 of the defaults and of the fitted values).

    ``fixed``: name -> value kept as given; ``thresholds``: whether the threshold is searched (False with
    several classes)."""
    fixed = fixed or {}
    start = replace(DEFAULT_CUTOFFS, **fixed)
    memo: dict[Cutoffs, tuple[float, float]] = {}

    def score(c: Cutoffs) -> tuple[float, float]:
        if c not in memo:
            memo[c] = score_cutoffs(foregrounds, truths, c)
        return memo[c]

    def grid(name: str) -> tuple:
        searched = name in GRID and name not in fixed and (name != "threshold" or thresholds)
        return GRID[name] if searched else (getattr(start, name),)

    best = start
    for t in grid("threshold"):  # threshold × split depth at the default minimum size
        for h in grid("split_h"):
            c = replace(start, threshold=t, split_h=h)
            if score(c) > score(best):  # strictly better: ties keep the earlier (the defaults first)
                best = c
    for m in grid("min_size"):
        c = replace(best, min_size=m)
        if score(c) > score(best):
            best = c
    objects = sum(int((np.unique(t) > 0).sum()) for t in truths)
    gain, noise = score(best)[0] - score(start)[0], noise_of(score(start)[0], objects)
    chosen = best if gain > noise else start
    record = {
        "cutoffs": chosen.to_dict(),
        "best_on_validation": best.to_dict(),
        "val_f1_default": score(start)[0],
        "val_f1_fitted": score(best)[0],
        "val_f1_mean_default": score(start)[1],
        "val_f1_mean_fitted": score(best)[1],
        "val_objects": objects,
        "noise": noise,
        "kept_defaults": chosen is start,
        "tried": len(memo),
        "fixed": sorted(fixed),
    }
    return chosen, record


def noise_of(f1: float, objects: int) -> float:
    """Two standard errors of an F1 measured on ``objects`` objects: the smallest gain that counts."""
    n = max(objects, 1)
    return 2 * max(math.sqrt(f1 * (1 - f1) / n), 1 / n)
