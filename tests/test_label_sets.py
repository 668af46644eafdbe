"""Paired tests of two multi-label classifiers (``measure.label_sets``, ``engine.paired`` on 0/1 rows): micro-F1
from per-text counts against scikit-learn, the randomization p-value against the exact one (every swap enumerated),
the bootstrap interval against one recomputed with scikit-learn on the same resamples."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import f1_score

from attnlab.engine.paired import paired_tests, paired_words
from attnlab.measure.label_sets import micro_f1, micro_f1_bootstrap, micro_f1_randomization, text_counts
from attnlab.measure.seed_pairs import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED


def label_rows(n: int, k: int, seed: int, on: float = 0.4) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, k)) < on).astype(int)


def noisy(truth: np.ndarray, flip: float, seed: int) -> np.ndarray:
    """``truth`` with each label flipped with probability ``flip``."""
    return np.where(np.random.default_rng(seed).random(truth.shape) < flip, 1 - truth, truth)


@pytest.mark.parametrize("seed", [0, 1])
def test_micro_f1_of_summed_text_counts_is_scikit_learns(seed):
    truth, pred = label_rows(50, 4, seed), label_rows(50, 4, seed + 10)
    counts = text_counts(truth, pred)
    assert counts.shape == (50, 3) and counts.sum() == (truth | pred).sum()  # each on label: TP, FP or FN once
    assert micro_f1(counts.sum(0)) == pytest.approx(f1_score(truth, pred, average="micro", zero_division=0))
    assert micro_f1(np.zeros(3)) == 0.0  # nothing true, nothing predicted: scikit-learn's zero_division=0
    with pytest.raises(ValueError, match=r"expected two \(texts, labels\) arrays of one shape"):
        text_counts(truth, pred[:, :3])


def test_the_randomization_p_value_is_the_exact_one_of_every_swap():
    truth = label_rows(10, 3, 2)
    first, second = noisy(truth, 0.15, 3), noisy(truth, 0.35, 4)
    a, b = text_counts(truth, first), text_counts(truth, second)
    observed = micro_f1(a.sum(0)) - micro_f1(b.sum(0))
    far = 0
    for swaps in itertools.product([0, 1], repeat=10):  # all 1,024 ways of exchanging the two outputs text by text
        s = np.asarray(swaps, dtype=bool)[:, None]
        d = micro_f1(np.where(s, b, a).sum(0)) - micro_f1(np.where(s, a, b).sum(0))
        far += abs(d) >= abs(observed) - 1e-12
    exact = far / 1024
    t = micro_f1_randomization(truth, first, second)
    assert t["n"] == 10 and t["diff"] == pytest.approx(observed) and observed > 0
    assert 0.02 < exact < 0.9 and t["p"] == pytest.approx(exact, abs=0.015)  # 10,000 shuffles: σ ≤ 0.005
    assert micro_f1_randomization(truth, second, first)["p"] == t["p"]  # two-sided
    assert micro_f1_randomization(truth, first, first) == {"n": 10, "diff": 0.0, "p": 1.0}


def test_a_clear_gain_gets_the_smallest_p_the_shuffles_allow():
    truth = label_rows(300, 4, 5)
    t = micro_f1_randomization(truth, truth, noisy(truth, 0.3, 6), rounds=2000)
    assert t["diff"] > 0.25 and t["p"] == pytest.approx(1 / 2001)


def test_the_bootstrap_interval_is_scikit_learns_on_the_same_resamples():
    truth = label_rows(60, 3, 7)
    first, second = noisy(truth, 0.1, 8), noisy(truth, 0.2, 9)
    diff, low, high = micro_f1_bootstrap(truth, first, second)
    f1 = [f1_score(truth, x, average="micro") for x in (first, second)]
    assert diff == pytest.approx(f1[0] - f1[1])
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, 60, size=(BOOTSTRAP_RESAMPLES, 60))
    diffs = [
        f1_score(truth[d], first[d], average="micro") - f1_score(truth[d], second[d], average="micro") for d in draws
    ]
    assert (low, high) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))
    assert low < diff < high


def test_paired_tests_on_label_sets_by_hand():
    truth = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]]
    model = [[1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1]]  # every label right on texts 0, 1 and 3
    base = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 1]]  # on texts 1 and 2
    t = paired_tests(model, truth, {"b": {"test_predictions": base}, "other split": {"test_predictions": base[:3]}})
    assert set(t) == {"b"}  # predictions of other samples are not paired
    f1 = [f1_score(truth, x, average="micro") for x in (model, base)]
    assert (t["b"]["n"], t["b"]["model_only"], t["b"]["baseline_only"]) == (4, 2, 1)
    assert t["b"]["micro_f1_diff"] == pytest.approx(f1[0] - f1[1]) and t["b"]["p"] == 1.0
    assert 0 < t["b"]["micro_f1_p"] <= 1
    (line,) = paired_words(t, "texts")
    assert line.startswith(f"paired test against b: micro-F1 {100 * (f1[0] - f1[1]):+.2f} points, approximate")
    assert "the network alone right on 2 of the 4 test texts, b alone on 1; McNemar's exact p = 1" in line
    assert "micro_f1_p" not in paired_tests([0, 1], [0, 0], {"b": {"test_predictions": [1, 0]}})["b"]  # one class


def test_compare_pairs_one_seed_of_label_sets_by_the_micro_f1_bootstrap():
    from attnlab.engine.compare import _paired, _versus
    from attnlab.report.compare_table import _paired_lines

    truth = label_rows(80, 3, 11)
    runs = [
        {"seed": 0, "test_targets": truth.tolist(), "test_predictions": noisy(truth, f, s).tolist()}
        for f, s in ((0.05, 12), (0.25, 13))
    ]
    for run in runs:
        run["test_metrics"] = {"test_micro_f1": f1_score(truth, run["test_predictions"], average="micro")}
    got = _versus(runs[:1], runs[1:], "test_micro_f1", True)
    diff, low, high = micro_f1_bootstrap(truth, runs[0]["test_predictions"], runs[1]["test_predictions"])
    assert (got["diff"], got["diff_low"], got["diff_high"]) == (diff, low, high) and got["verdict"] == "better"
    assert got["interval"] == "paired bootstrap of the test samples' micro-F1 (one seed)"
    paired = _paired(runs[:1], {"base": {"test_predictions": runs[1]["test_predictions"]}})
    assert paired["base"]["micro_f1_diff"] == [pytest.approx(diff)]
    lines = _paired_lines([{"variant": "capsule", "paired": paired}], ["variant"], "texts")
    assert "micro-F1 by approximate randomization, 10,000 shuffles" in lines[1]
    assert lines[3] == (
        "| variant | against | micro-F1 difference | randomization p | network alone every label right "
        "| baseline alone every label right | p |"
    )
    assert lines[5].startswith(f"| capsule | base | {100 * diff:+.2f} | 0.0001 | ")
