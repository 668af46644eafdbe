"""Two multi-label classifiers on the same texts, text by text: the difference of their micro-F1, its p-value and
its interval.

Micro-F1 = 2 ΣTP / (2 ΣTP + ΣFP + ΣFN) is a ratio of sums over the texts, not a mean of per-text scores, so
McNemar's test (one right-or-wrong per text) does not apply to it. Both tests here resample whole texts and recompute
the ratio from each text's (TP, FP, FN):

- ``micro_f1_randomization``: approximate randomization (Noreen 1989; Yeh, COLING 2000, who shows it is the sound
  test for F-scores): under the null hypothesis the two systems' outputs on a text are exchangeable, so each text's
  two outputs are swapped with probability 1/2 and the F1 difference recomputed; the p-value is the share of
  ``RANDOMIZATION_ROUNDS`` shuffles at least as far from 0 as the observed difference, (1 + r) / (1 + R).
- ``micro_f1_bootstrap``: a paired bootstrap interval (the same resampled texts for both, as
  ``seed_pairs.bootstrap_interval`` for accuracy).
"""

from __future__ import annotations

import numpy as np

from .seed_pairs import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED

__all__ = ["RANDOMIZATION_ROUNDS", "micro_f1", "micro_f1_bootstrap", "micro_f1_randomization", "text_counts"]

RANDOMIZATION_ROUNDS = 10_000
RANDOMIZATION_SEED = 0
_CHUNK = 1000  # shuffles drawn at once: (chunk, N) swaps in memory, not (rounds, N)


def text_counts(truth, predicted) -> np.ndarray:
    """(N, 3) float64: each text's true positives, false positives and false negatives over its labels, from
    (N, K) 0/1 arrays."""
    t, p = np.asarray(truth).astype(bool), np.asarray(predicted).astype(bool)
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(f"text_counts: expected two (texts, labels) arrays of one shape, got {t.shape}, {p.shape}")
    return np.stack([(t & p).sum(1), (~t & p).sum(1), (t & ~p).sum(1)], axis=1).astype(np.float64)


def micro_f1(totals: np.ndarray) -> np.ndarray:
    """Micro-F1 of summed (…, 3) counts (TP, FP, FN); 0 where nothing is true or predicted (scikit-learn's
    ``zero_division=0``)."""
    tp, fp, fn = totals[..., 0], totals[..., 1], totals[..., 2]
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den, dtype=np.float64), where=den > 0)


def _paired_counts(truth, first, second) -> tuple[np.ndarray, np.ndarray]:
    a, b = text_counts(truth, first), text_counts(truth, second)
    if a.shape[0] == 0:
        raise ValueError("micro-F1 paired test: expected at least one text, got none")
    return a, b


def micro_f1_randomization(truth, first, second, rounds: int = RANDOMIZATION_ROUNDS) -> dict:
    """``{n, diff, p}``: the micro-F1 of ``first`` minus that of ``second`` against ``truth`` (each (N, K) 0/1) and
    its two-sided approximate-randomization p-value (fixed seed: the same inputs give the same p)."""
    a, b = _paired_counts(truth, first, second)
    observed = float(micro_f1(a.sum(0)) - micro_f1(b.sum(0)))
    rng, delta = np.random.default_rng(RANDOMIZATION_SEED), b - a  # a swapped text moves a's totals by b − a
    at_least = 0
    for start in range(0, rounds, _CHUNK):
        swaps = rng.random((min(_CHUNK, rounds - start), a.shape[0])) < 0.5
        shift = swaps @ delta  # (chunk, 3)
        diffs = micro_f1(a.sum(0) + shift) - micro_f1(b.sum(0) - shift)
        at_least += int((np.abs(diffs) >= abs(observed) - 1e-12).sum())
    return {"n": int(a.shape[0]), "diff": observed, "p": (1 + at_least) / (1 + rounds)}


def micro_f1_bootstrap(truth, first, second, level: float = 0.95) -> tuple[float, float, float]:
    """(difference, low, high) of micro-F1, ``first`` − ``second``, by a paired bootstrap of the texts
    (``BOOTSTRAP_RESAMPLES``, fixed seed), the percentile interval."""
    a, b = _paired_counts(truth, first, second)
    rng, n, diffs = np.random.default_rng(BOOTSTRAP_SEED), a.shape[0], []
    for start in range(0, BOOTSTRAP_RESAMPLES, _CHUNK // 4):  # (chunk, N, 3) resampled counts at a time
        draws = rng.integers(0, n, size=(min(_CHUNK // 4, BOOTSTRAP_RESAMPLES - start), n))
        diffs.append(micro_f1(a[draws].sum(1)) - micro_f1(b[draws].sum(1)))
    diffs = np.concatenate(diffs)
    low, high = np.percentile(diffs, [50 * (1 - level), 50 * (1 + level)])
    return float(micro_f1(a.sum(0)) - micro_f1(b.sum(0))), float(low), float(high)
