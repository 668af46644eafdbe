"""The text task's tuned linear baseline: NB-SVM's log-count ratio and interpolation by hand, the choice made on
validation alone, the candidates for each kind of script."""

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from attnlab.tasks.text.baseline import NBSVM, candidates, tuned_linear
from attnlab.tasks.text.data import TextSplits

# 4 texts, 3 features (counts); texts 0 and 1 positive
COUNTS = np.array([[2, 1, 0], [1, 0, 0], [0, 1, 3], [0, 0, 1]], dtype=float)
LABELS = np.array([1, 1, 0, 0])


def test_nbsvm_log_count_ratio_and_interpolation_by_hand():
    # binarized: positive texts have feature 0 twice, feature 1 once, feature 2 never; the others 0, 1, 2 times.
    # With alpha 1: p = (3, 2, 1), q = (1, 2, 3); r = log((p / 6) / (q / 6)) = (log 3, 0, -log 3)
    r = np.log(np.array([3, 2, 1]) / np.array([1, 2, 3]))
    pure_nb = NBSVM(C=1.0, beta=0.0).fit(csr_matrix(COUNTS), LABELS)
    # beta 0: w' is the mean magnitude alone, the same for every feature, so the weights are r times one number
    coef = pure_nb.coef_.ravel()
    assert coef[1] == 0 and coef[0] == pytest.approx(-coef[2]) and coef[0] / r[0] > 0
    assert np.allclose(coef / coef[0], r / r[0])
    assert (pure_nb.predict(csr_matrix(COUNTS)) == LABELS).all()
    # beta 0.25 (the paper's): w' = 0.75 mean|w| + 0.25 w of the SVM on the scaled binary features
    from sklearn.svm import LinearSVC

    svm = LinearSVC(C=1.0).fit((COUNTS > 0) * r, LABELS)
    w = svm.coef_.ravel()
    expected = r * (0.75 * np.abs(w).mean() + 0.25 * w)
    assert np.allclose(NBSVM(C=1.0).fit(csr_matrix(COUNTS), LABELS).coef_.ravel(), expected)


def test_nbsvm_with_several_classes_is_one_against_the_rest():
    x = csr_matrix(np.eye(3).repeat(2, axis=0))  # each class its own feature
    y = np.array([0, 0, 1, 1, 2, 2])
    model = NBSVM().fit(x, y)
    assert model.coef_.shape == (3, 3) and (model.predict(x) == y).all()


def _texts(n: int, seed: int) -> tuple[list[str], list[int]]:
    """English-like texts whose class is carried by one word among noise words."""
    rng = np.random.default_rng(seed)
    cue, noise = ["good", "bad", "odd"], ["the", "a", "book", "it", "was", "very", "and", "so"]
    labels = rng.integers(0, 3, n).tolist()
    texts = [" ".join([*rng.choice(noise, 5), cue[y], *rng.choice(noise, 3)]) for y in labels]
    return texts, labels


def test_tuned_linear_chooses_on_validation_and_scores_test_once():
    train, val, test = _texts(120, 0), _texts(40, 1), _texts(60, 2)
    splits = TextSplits(*train, *test, classes=["good", "bad", "odd"])
    result = tuned_linear(splits, val, spaced=True)
    _, grid = candidates(spaced=True)
    assert len(result["grid"]) == len(grid)
    best_val = max(r["val_acc"] for r in result["grid"])
    first_best = next(r for r in result["grid"] if r["val_acc"] == best_val)  # ties: the first tried
    assert (result["model"], result["features"], result["C"]) == tuple(
        first_best[k] for k in ("model", "features", "C")
    )
    assert result["val_acc"] == best_val and result["test_acc"] == first_best["test_acc"] > 0.9
    assert np.mean(np.array(result["test_predictions"]) == np.array(test[1])) == result["test_acc"]
    # the test labels never decide: flipping them all changes the test score, not the choice
    flipped = TextSplits(*train, test[0], [(y + 1) % 3 for y in test[1]], classes=["good", "bad", "odd"])
    again = tuned_linear(flipped, val, spaced=True)
    assert (again["model"], again["features"], again["C"]) == (result["model"], result["features"], result["C"])
    assert again["test_predictions"] == result["test_predictions"]


def test_candidates_follow_the_script():
    spaceless, grid = candidates(spaced=False)
    assert list(spaceless) == ["char 1-3", "char 1-5"]
    assert {c.model for c in grid} == {"svm", "nbsvm", "logreg"}
    spaced, _ = candidates(spaced=True)
    assert list(spaced) == ["char 1-3", "char_wb 1-5", "word 1-2"]


def test_tuned_linear_fits_in_threads_as_in_one(monkeypatch):
    """The grid's fits run in a pool of threads: the rows (in the grid's order, feature set by feature set), the
    choice and the predictions are those of one thread."""
    from attnlab.tasks import classical

    train, val, test = _texts(120, 3), _texts(40, 4), _texts(60, 5)
    splits = TextSplits(*train, *test, classes=["good", "bad", "odd"])
    monkeypatch.setattr(classical, "FIT_THREADS", 4)
    pooled = tuned_linear(splits, val, spaced=True)
    monkeypatch.setattr(classical, "FIT_THREADS", 1)
    alone = tuned_linear(splits, val, spaced=True)
    features, grid = candidates(spaced=True)
    order = [(c.model, c.features, c.C) for f in features for c in grid if c.features == f]
    assert [(r["model"], r["features"], r["C"]) for r in pooled["grid"]] == order
    assert pooled["grid"] == alone["grid"] and pooled["test_predictions"] == alone["test_predictions"]
