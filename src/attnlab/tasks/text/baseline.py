"""The text task's classical baseline, tuned on the run's validation split as the network is: linear models on
n-gram features (scikit-learn), the strongest family for short texts.

Every candidate is fitted on the texts the network trains on and scored on the network's validation texts; the
most accurate there (ties: the first listed) is scored once on the test texts. Candidates (``candidates``):

- features, TF-IDF with sublinear term frequency: character 1-3-grams; then character 1-5-grams for scripts
  written without spaces (Chinese, Japanese: ``--tokenizer`` char or jieba), or char_wb 1-5-grams (within word
  boundaries) and word 1-2-grams for scripts with spaces (``words``);
- models: a linear SVM (``LinearSVC``, C in ``SVM_C``), NB-SVM (``NBSVM``, C in ``NBSVM_C``) on each feature set,
  and logistic regression (C in ``LOGREG_C``) on the character 1-3-grams only (its fits take 4-6 s each on
  reviews_zh's 14 k texts against 0.3-2 s for the SVMs: AMD EPYC, 2 cores).

``tuned_linear``'s entry holds the chosen candidate, its validation and test scores, its test predictions (for the
engine's paired test) and every candidate's validation and test accuracy (``grid``: test figures no choice looked
at, for docs/text.md).

Several labels per text (``tuned_one_vs_rest``): one logistic regression per label (scikit-learn's
``OneVsRestClassifier``) on each feature set, C in ``LOGREG_C``; each candidate's decision threshold on its
probabilities chosen on validation as the network's is (``metrics.choose_threshold``), the candidate with the best
validation micro-F1 scored once on test with the network's metrics; its test predictions (0/1 rows) for the
engine's paired tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .. import classical
from .data import TextSplits, multi_hot
from .metrics import choose_threshold, multilabel_scores

__all__ = [
    "LOGREG_C",
    "NBSVM",
    "NBSVM_C",
    "SVM_C",
    "Candidate",
    "candidates",
    "tuned_linear",
    "tuned_one_vs_rest",
]

SVM_C = (0.1, 0.3, 1.0, 3.0)
NBSVM_C = (0.1, 0.3, 1.0)
LOGREG_C = (4.0, 16.0, 64.0)

CHAR_1_3 = {"analyzer": "char", "ngram_range": (1, 3)}
SPACELESS_FEATURES = {"char 1-3": CHAR_1_3, "char 1-5": {"analyzer": "char", "ngram_range": (1, 5)}}
SPACED_FEATURES = {
    "char 1-3": CHAR_1_3,
    "char_wb 1-5": {"analyzer": "char_wb", "ngram_range": (1, 5)},
    "word 1-2": {"analyzer": "word", "ngram_range": (1, 2)},
}


class NBSVM:
    """NB-SVM (Wang & Manning, ACL 2012, §2.3): a linear SVM on binarized n-gram features scaled by the
    naive-Bayes log-count ratio ``r = log((p / ‖p‖₁) / (q / ‖q‖₁))`` (p, q: the feature counts of the positive and
    the other texts, plus ``alpha``), its weights interpolated with their mean magnitude,
    ``w' = (1 − β) w̄ + β w`` (β = 0.25, the paper's), so that the model trusts naive Bayes unless the SVM is
    confident. Several classes: one against the rest, the highest score wins (as the paper's multiclass runs)."""

    def __init__(self, C: float = 1.0, beta: float = 0.25, alpha: float = 1.0) -> None:
        self.C, self.beta, self.alpha = C, beta, alpha

    def fit(self, x, y: np.ndarray) -> NBSVM:
        from sklearn.svm import LinearSVC

        binary = (x > 0).astype(np.float64)
        self.classes_ = np.unique(y)
        positives = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
        coefs, intercepts = [], []
        for k in positives:
            pos = y == k
            p = self.alpha + np.asarray(binary[pos].sum(0)).ravel()
            q = self.alpha + np.asarray(binary[~pos].sum(0)).ravel()
            r = np.log((p / p.sum()) / (q / q.sum()))
            svm = LinearSVC(C=self.C).fit(binary.multiply(r).tocsr(), pos)
            w = svm.coef_.ravel()
            coefs.append(r * ((1 - self.beta) * np.abs(w).mean() + self.beta * w))
            intercepts.append(svm.intercept_[0])
        self.coef_, self.intercept_ = np.stack(coefs), np.asarray(intercepts)
        return self

    def predict(self, x) -> np.ndarray:
        scores = (x > 0).astype(np.float64) @ self.coef_.T + self.intercept_  # (N, classes or 1)
        if len(self.classes_) == 2:
            return self.classes_[(scores[:, 0] > 0).astype(int)]
        return self.classes_[scores.argmax(1)]


def _vectorized(kwargs: dict, train: list[str], val: list[str], test: list[str]) -> tuple:
    """(train, val, test) TF-IDF rows (sublinear term frequency) of a vectorizer fitted on ``train``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, **kwargs)
    return vectorizer.fit_transform(train), vectorizer.transform(val), vectorizer.transform(test)


@dataclass(frozen=True)
class Candidate:
    model: str  # "svm", "nbsvm", "logreg"
    features: str  # a key of the feature sets
    C: float

    def make(self):
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        makers: dict[str, Callable] = {
            "svm": lambda: LinearSVC(C=self.C),
            "nbsvm": lambda: NBSVM(C=self.C),
            "logreg": lambda: LogisticRegression(C=self.C, max_iter=2000),
        }
        return makers[self.model]()


def candidates(spaced: bool) -> tuple[dict[str, dict], list[Candidate]]:
    """(feature sets by name, the candidates on them) for texts with spaces between words or without."""
    features = SPACED_FEATURES if spaced else SPACELESS_FEATURES
    grid = [Candidate("svm", f, c) for f in features for c in SVM_C]
    grid += [Candidate("nbsvm", f, c) for f in features for c in NBSVM_C]
    grid += [Candidate("logreg", "char 1-3", c) for c in LOGREG_C]
    return features, grid


def tuned_linear(d: TextSplits, val: tuple[list[str], list[int]], *, spaced: bool) -> dict:
    """The candidate most accurate on ``val`` (texts, labels), fitted on ``d``'s training texts: ``test_acc``,
    ``test_macro_f1``, ``val_acc``, what it is, its ``test_predictions``, the ``grid`` and the ``seconds`` it took."""
    from sklearn.metrics import f1_score

    from ..classical import blas_threads

    start = time.perf_counter()
    (val_x, val_y), test_y = (val[0], np.asarray(val[1])), np.asarray(d.test_labels)
    train_y = np.asarray(d.train_labels)
    features, grid = candidates(spaced)

    def fit(c: Candidate, x, xv, xt) -> tuple[float, np.ndarray]:
        model = c.make().fit(x, train_y)
        return float((model.predict(xv) == val_y).mean()), model.predict(xt)

    jobs = []
    with blas_threads(), ThreadPoolExecutor(classical.FIT_THREADS) as pool:
        # one fit a core (``classical.FIT_THREADS``: liblinear and the sparse products release the GIL), the next
        # feature set vectorized meanwhile: reviews_zh's grid on 2 cores of an Intel Xeon 46-52 s -> 39-41 s
        for name, kwargs in features.items():
            x, xv, xt = _vectorized(kwargs, d.train_texts, val_x, d.test_texts)
            jobs += [(c, pool.submit(fit, c, x, xv, xt)) for c in grid if c.features == name]
        rows, best = [], None
        for c, job in jobs:  # in the grid's order: ties go to the first listed
            val_acc, pred = job.result()
            rows.append({"model": c.model, "features": c.features, "C": c.C, "val_acc": val_acc})
            rows[-1]["test_acc"] = float((pred == test_y).mean())
            if best is None or val_acc > best[0]["val_acc"]:
                best = (rows[-1], pred)
    chosen, pred = best
    f1 = f1_score(test_y, pred, labels=np.arange(len(d.classes)), average="macro", zero_division=0)
    return {
        "test_acc": chosen["test_acc"],
        "test_macro_f1": float(f1),
        "val_acc": chosen["val_acc"],
        "model": chosen["model"],
        "features": chosen["features"],
        "C": chosen["C"],
        "test_predictions": pred.tolist(),
        "grid": rows,
        "seconds": time.perf_counter() - start,
    }


def tuned_one_vs_rest(d: TextSplits, val: tuple[list[str], list[list[int]]], *, spaced: bool) -> dict:
    """Several labels per text: TF-IDF (``candidates``' feature sets) + one logistic regression per label, C in
    ``LOGREG_C``, each with the threshold best on ``val`` (texts, each text's class indices); the candidate with the
    best validation micro-F1 (ties: the first) scored once on test: ``test_micro_f1``, ``test_macro_f1``,
    ``test_subset_acc``, ``test_hamming_loss``, ``val_micro_f1``, what it is, its ``test_predictions`` (a 0/1 row a
    text), the ``grid`` and the ``seconds``."""
    import warnings

    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from ..classical import blas_threads

    start, k = time.perf_counter(), len(d.classes)
    train_y = multi_hot(d.train_labels, k).numpy().astype(np.int64)
    val_y = multi_hot(val[1], k).numpy() > 0.5
    test_y = multi_hot(d.test_labels, k).numpy() > 0.5
    features, _ = candidates(spaced)

    def fit(c: float, x, xv, xt) -> tuple[float, float, np.ndarray]:
        model = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000)).fit(x, train_y)
        threshold, val_f1 = choose_threshold(model.predict_proba(xv), val_y)
        return threshold, val_f1, model.predict_proba(xt) >= threshold

    jobs = []
    with blas_threads(), warnings.catch_warnings(), ThreadPoolExecutor(classical.FIT_THREADS) as pool:
        warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
        warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
        for name, kwargs in features.items():
            x, xv, xt = _vectorized(kwargs, d.train_texts, val[0], d.test_texts)
            jobs += [(name, c, pool.submit(fit, c, x, xv, xt)) for c in LOGREG_C]
        rows, best = [], None
        for name, c, job in jobs:  # in the grid's order: ties go to the first
            threshold, val_f1, pred = job.result()
            test = multilabel_scores(test_y, pred)
            rows.append({"model": "ovr_logreg", "features": name, "C": c, "threshold": threshold})
            rows[-1].update({"val_micro_f1": val_f1, **{f"test_{m}": v for m, v in test.items()}})
            if best is None or val_f1 > best[0]["val_micro_f1"]:
                best = (rows[-1], pred)
    chosen, pred = best
    predictions = pred.astype(np.int64).tolist()
    return {**chosen, "test_predictions": predictions, "grid": rows, "seconds": time.perf_counter() - start}
