"""Stratified splits of a training set: the one carver of every task's validation split.

``stratified_indices(labels, fraction)`` holds out ``fraction`` of each class (at least one sample of each class
that has two or more), in a seeded random order; the text task's fixed test split of reviews_zh is drawn with it
too. Validation is always carved with the fixed seed ``VAL_SEED``, whatever a run's ``--seed``: runs that differ
in their seed are compared on the same validation samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["VAL_SEED", "stratified_indices"]

VAL_SEED = 0


def stratified_indices(
    labels: Sequence[int], fraction: float, seed: int = 0, *, at_least_one: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices: ``fraction`` of each class held out (rounded; with ``at_least_one``, one of
    each class that has two or more samples), both in a seeded random order."""
    rng = np.random.default_rng(seed)
    labels_a = np.asarray(labels)
    kept, held = [], []
    for c in np.unique(labels_a):
        idx = rng.permutation(np.flatnonzero(labels_a == c))
        n_held = round(len(idx) * fraction)
        if at_least_one and len(idx) >= 2:
            n_held = min(max(1, n_held), len(idx) - 1)
        held.append(idx[:n_held])
        kept.append(idx[n_held:])
    return rng.permutation(np.concatenate(kept)), rng.permutation(np.concatenate(held))
