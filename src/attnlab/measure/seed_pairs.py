"""Does a change help? A row of a comparison against its reference row, trained with the same seeds.

Seed by seed the two runs share their data order, augmentation and initial weights' stream, so the difference
of their test figures removes what the seed alone does. With n ≥ 2 seed pairs: the mean difference and its
95 % t-interval, mean ± t(0.975, n − 1) · s / √n (Student's t; s the differences' standard deviation). With one
seed and per-sample test predictions: a paired bootstrap of the test samples (the same resampled samples for
both runs, 2,000 resamples, a fixed seed), the 2.5th and 97.5th percentiles of the accuracy difference
(Efron & Tibshirani 1993; the paired form is Koehn's for MT, EMNLP 2004). The verdict: "better" when the whole
interval lies on the side of improvement, "worse" on the other side, else "no difference".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["t_interval", "bootstrap_interval", "verdict", "seeds_for"]

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def t_interval(differences: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of paired differences (at least 2)."""
    from scipy.stats import t

    d = np.asarray(differences, dtype=np.float64)
    if d.size < 2:
        raise ValueError(f"t_interval: expected at least 2 paired differences, got {d.size}")
    mean, half = float(d.mean()), float(t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return mean, mean - half, mean + half


def bootstrap_interval(
    first_correct: Sequence[bool], second_correct: Sequence[bool], level: float = 0.95
) -> tuple[float, float, float]:
    """(difference, low, high) of accuracy, first − second, on the same samples, by a paired bootstrap."""
    a = np.asarray(first_correct, dtype=np.float64)
    b = np.asarray(second_correct, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"bootstrap_interval: expected two flat sequences of one length, got {a.shape}, {b.shape}")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = rng.integers(0, a.size, size=(BOOTSTRAP_RESAMPLES, a.size))
    diffs = (a - b)[draws].mean(1)
    low, high = np.percentile(diffs, [50 * (1 - level), 50 * (1 + level)])
    return float((a - b).mean()), float(low), float(high)


def verdict(low: float, high: float, *, higher_is_better: bool = True) -> str:
    """ "better", "worse" or "no difference" from an interval of (row − reference)."""
    if not higher_is_better:
        low, high = -high, -low
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no difference"


def seeds_for(difference: float, spread: float, level: float = 0.95) -> int:
    """The fewest seed pairs whose t-interval excludes 0 for a true mean ``difference`` when the paired
    differences spread by ``spread`` (their standard deviation): the smallest n with t(n − 1) · spread / √n
    below ``difference``."""
    from scipy.stats import t

    if difference <= 0 or spread < 0:
        raise ValueError(f"seeds_for: expected difference > 0 and spread >= 0, got {difference}, {spread}")
    n = 2
    while t.ppf(0.5 + level / 2, n - 1) * spread / math.sqrt(n) >= difference:
        n += 1
    return n
