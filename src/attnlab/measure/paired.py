"""A paired test of two classifiers scored on the same samples: McNemar's exact test.

Only the samples the two disagree on carry information: ``b`` that the first gets right and the second wrong,
``c`` the other way. Under the null hypothesis (equal accuracy) each disagreement goes either way with
probability 1/2, so ``b`` ~ Binomial(b + c, 1/2), and the two-sided exact p-value is scipy's ``binomtest``
(McNemar, Psychometrika 1947; the exact form is what Dietterich, Neural Computation 1998, recommends for
comparing two classifiers on one test set).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["mcnemar_exact"]


def mcnemar_exact(first_correct: Sequence[bool], second_correct: Sequence[bool]) -> dict:
    """``{n, first_only, second_only, p}``: how many of ``n`` paired samples only the first (only the second) gets
    right, and McNemar's exact two-sided p-value (1.0 when they never disagree)."""
    from scipy.stats import binomtest

    a, b = np.asarray(first_correct, dtype=bool), np.asarray(second_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"mcnemar_exact: expected two flat sequences of one length, got {a.shape} and {b.shape}")
    first_only, second_only = int((a & ~b).sum()), int((~a & b).sum())
    discordant = first_only + second_only
    p = 1.0 if discordant == 0 else float(binomtest(first_only, discordant, 0.5).pvalue)
    return {"n": int(a.size), "first_only": first_only, "second_only": second_only, "p": p}
