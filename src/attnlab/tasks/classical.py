"""The parts the tasks' classical baselines share (scikit-learn): reading a dataset's items once as feature rows,
area downsampling, the validation carve, the choice of hyperparameters on it, the refit and the test scores, and
the BLAS thread limit the fits run under.

The recipe, for every model and grid: ``VAL_FRACTION`` of each class of the training rows is carved off as
validation (``attnlab.data.splits.stratified_indices``, seed ``VAL_SEED``, at least one row of each class that has
two); each grid point's model is fitted on the rest and the most accurate on validation wins (ties: the first, so a
grid runs from the most regularized); that model is refitted on all training rows and scored once on test, its
hyperparameters beside the scores. Macro F1 averages over the ``classes`` given (one neither in test nor predicted
counts 0, as the text task's ``TextMetrics``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ..data.splits import VAL_SEED, stratified_indices

__all__ = [
    "BLAS_THREADS",
    "Baseline",
    "FIT_THREADS",
    "LOGREG_C",
    "VAL_FRACTION",
    "blas_threads",
    "carve",
    "chosen_and_scored",
    "downsample",
    "logreg",
    "read_rows",
]

VAL_FRACTION = 0.2
LOGREG_C = (0.001, 0.01, 0.1, 1.0)
LOGREG_MAX_ITER = 1000
# OpenBLAS's threads spin while they wait: on 2 cores shared with other busy processes, 2 threads made the 500-digit
# pixel run 10-20× slower than 1 (16-28 s vs 0.9-2 s), so the fits use half the cores.
BLAS_THREADS = max(1, (os.cpu_count() or 2) // 2)
# the grids' fits run in threads, one a core: the solvers' matrix products (BLAS, liblinear) release the GIL
# (the video task's three logistic-regression grids on 2 cores of an Intel Xeon: 11.6 -> 7.6 s, the same choices)
FIT_THREADS = os.cpu_count() or 1


def blas_threads():
    """A context with BLAS limited to ``BLAS_THREADS`` (scikit-learn's and scipy's BLAS loaded first: threadpoolctl
    limits only the libraries loaded when it is entered)."""
    import sklearn.decomposition
    import sklearn.linear_model
    import sklearn.svm  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(BLAS_THREADS, user_api="blas")


def downsample(images: Tensor, max_side: int) -> Tensor:
    """(N, C, H, W) -> float (N, C, h, w) with min(h, w) = ``max_side`` by area interpolation; unchanged if the
    shorter side is at most ``max_side`` already."""
    h, w = images.shape[-2:]
    short = min(h, w)
    if short <= max_side:
        return images
    size = (max(1, round(h * max_side / short)), max(1, round(w * max_side / short)))
    return F.interpolate(images.float(), size=size, mode="area")


def read_rows(
    data: Dataset,
    indices: Iterable[int],
    features: Callable[[Tensor], np.ndarray],
    who: str,
    *,
    batched: Callable[[Tensor], Tensor] | None = None,
    chunk: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Items ``indices`` of ``data`` (tensor, int label), in order, through ``features``: rows (N, D), labels (N,).
    ``batched``: columns computed for ``chunk`` items at once, (K, …) stacked -> (K, D'), appended to each row
    (work that is faster as one batch: the video baseline's optical flow); the items must then share one shape.
    ``who`` starts the error messages."""
    rows, labels, shape = [], [], None
    indices = [int(i) for i in indices]
    for start in range(0, len(indices), chunk):
        part = indices[start : start + chunk]
        items = [data[i] for i in part]
        tensors = [torch.as_tensor(item) for item, _ in items]
        chunk_rows = [features(t) for t in tensors]
        if batched is not None:
            shape = shape or tensors[0].shape
            for i, t in zip(part, tensors, strict=True):
                if t.shape != shape:
                    raise ValueError(f"{who}: item {i} differs in size from the first ({tuple(t.shape)})")
            extra = batched(torch.stack(tensors)).numpy()
            chunk_rows = [np.concatenate([r, e]) for r, e in zip(chunk_rows, extra, strict=True)]
        for i, row in zip(part, chunk_rows, strict=True):
            if rows and row.shape != rows[0].shape:
                raise ValueError(f"{who}: item {i} differs in size from the first ({len(row)} vs {len(rows[0])})")
            rows.append(row)
        labels += [int(label) for _, label in items]
    if not rows:
        raise ValueError(f"{who}: empty dataset")
    return np.stack(rows), np.asarray(labels, dtype=np.int64)


def logreg(C: float):
    """Standardized features, multinomial logistic regression (L-BFGS, L2) with inverse penalty ``C``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=LOGREG_MAX_ITER))


def carve(y: np.ndarray, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation) of the training rows: ``VAL_FRACTION`` of each class to validation."""
    fit, val = stratified_indices(y, VAL_FRACTION, VAL_SEED, at_least_one=True)
    if len(val) == 0 or len(fit) < 2:
        raise ValueError(f"{who}: {len(y)} training items leave no validation part")
    return fit, val


def _scores(y: np.ndarray, pred: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score

    f1 = f1_score(y, pred, labels=classes, average="macro", zero_division=0)
    return {"test_acc": float((pred == y).mean()), "test_macro_f1": float(f1)}


@dataclass(frozen=True)
class Baseline:
    """One classical model to choose and score: ``make(**point)`` builds it for a point of ``grid``; ``train`` and
    ``test`` are its rows (N, D) and labels (N,)."""

    make: Callable
    grid: list[dict]
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]


def chosen_and_scored(
    baselines: dict[str, Baseline], classes: np.ndarray, parts: tuple[np.ndarray, np.ndarray]
) -> dict[str, dict]:
    """``{name: {test_acc, test_macro_f1, **chosen, test_predictions}}``: for each baseline, the grid point whose
    model, fitted on the fit part of the carved ``parts`` (``carve``) of its training rows, is most accurate on the
    validation part (ties: the first, so a grid runs from the most regularized), refitted on all of them and
    scored on its test rows; its predictions of the test rows, in order, for the engine's paired test.

    Every grid point of every baseline is fitted in one pool of ``FIT_THREADS`` threads, then every refit in
    another: a core does not wait for the slowest point of one grid while another grid has work."""
    fit, val = parts
    points = [(name, p) for name, b in baselines.items() for p in b.grid]

    def accuracy(name: str, point: dict) -> float:
        b = baselines[name]
        x, y = b.train
        return float((b.make(**point).fit(x[fit], y[fit]).predict(x[val]) == y[val]).mean())

    def refit(name: str) -> np.ndarray:
        b = baselines[name]
        return b.make(**chosen[name]).fit(*b.train).predict(b.test[0])

    with ThreadPoolExecutor(FIT_THREADS) as pool:
        scores = iter(pool.map(lambda job: accuracy(*job), points))  # in the order of points
        chosen = {}
        for name, b in baselines.items():
            accuracies = [next(scores) for _ in b.grid]
            # the first of equals: a grid runs from the most regularized
            chosen[name] = b.grid[int(np.argmax(accuracies))]
        predictions = dict(zip(chosen, pool.map(refit, chosen), strict=True))
    return {
        name: {**_scores(baselines[name].test[1], pred, classes), **chosen[name], "test_predictions": pred.tolist()}
        for name, pred in predictions.items()
    }
