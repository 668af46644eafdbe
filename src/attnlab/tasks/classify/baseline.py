"""The classify task's classical baselines on raw pixels, fitted on the training split and scored once on the test
split, in the same run as the network (scikit-learn).

Each image is read once through the dataset's own (evaluation) transform, downsampled by area interpolation to
at most ``max_side`` px on its shorter side (smaller images stay as they are) and flattened. Two models:

- ``pixels_logreg``: standardized pixels, multinomial logistic regression (L-BFGS, L2), C from ``LOGREG_C``;
- ``pixels_svm``: the pixels projected on their first ``SVM_DIMS`` principal components, an RBF SVM, C from
  ``SVM_C`` and gamma from ``SVM_GAMMA`` in units of 1 / (pixels · variance) of the training pixels (scikit-learn's
  ``"scale"``). Neither standardized nor whitened: on the digits both cost accuracy (each pixel's noise scaled up
  to the strokes'). Skipped, with a warning, above ``SVM_MAX_TRAIN`` training images: its fits grow about
  quadratically with the number of images and would pass a minute on 2 CPU cores.

Hyperparameters are chosen on a validation part carved from the training images only, then the model is refitted
on all of them and scored on test (``attnlab.tasks.classical``, as the video task's baselines); the chosen values
come back beside the scores (``C``, ``gamma``). With more than ``limit`` training images, a seeded random ``limit``
of them (read in order) is used; the test split is always read whole. Macro F1 averages over every class seen in
train or test.

Measured on an AMD EPYC, 2 cores shared with other test runs (load average 3.5-4), torch 2.14.1, scikit-learn
1.9.1, BLAS on 1 thread, reading included; accuracies (logreg / SVM) on test:

- mnist5k, first 300 / 100 digits of its split, 28×28: 2.1 s, 0.81 / 0.87; 500 / 200: 2.2 s, 0.865 / 0.875;
- mnist5k, all 4,000 / 1,000 digits: 8.6 s, 0.893 (C = 0.01) / 0.956 (C = 10);
- synthetic 3×32×32 images (10 smooth prototypes + noise), 1,100 / 280: 5.4 s (about 1.5 s of it the first
  fit's start-up); 8,000 / 2,000, the SVM's largest size: 42 s; 20,000 / 4,000 (``limit``, logreg alone): 30-47 s.
"""

from __future__ import annotations

import warnings

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from ..classical import LOGREG_C, Baseline, blas_threads, carve, chosen_and_scored, downsample, logreg, read_rows

__all__ = ["LOGREG_C", "SVM_C", "SVM_DIMS", "SVM_GAMMA", "SVM_MAX_TRAIN", "pixel_baselines"]

SVM_DIMS = 100
SVM_C = (1.0, 10.0)
SVM_GAMMA = (0.5, 1.0, 2.0)  # times 1 / (pixels · variance of the training pixels)
SVM_MAX_TRAIN = 8000
WHO = "pixel baselines"


def _pixels(data: Dataset, indices: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Items ``indices`` of ``data``, downsampled and flattened: float32 pixels (N, C·h·w) and labels (N,)."""

    def pixels(image: Tensor) -> np.ndarray:
        return downsample(image[None], max_side).flatten().float().numpy()  # (C, H, W) -> (C·h·w,)

    return read_rows(data, indices, pixels, WHO)


def _svm(C: float, gamma: float, dims: int):
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    return make_pipeline(PCA(dims, random_state=0), SVC(C=C, gamma=gamma))


def _fit_and_score(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray) -> dict[str, dict]:
    """Both models on the pixels (N, D) of the training and test images."""
    train, test, classes, parts = (x, y), (xt, yt), np.union1d(y, yt), carve(y, WHO)
    baselines = {"pixels_logreg": Baseline(logreg, [{"C": c} for c in LOGREG_C], train, test)}
    dims = min(SVM_DIMS, x.shape[1], len(parts[0]) - 1)
    if len(y) > SVM_MAX_TRAIN:
        warnings.warn(f"{WHO}: pixels_svm skipped ({len(y)} training images > {SVM_MAX_TRAIN})", stacklevel=3)
    else:
        unit = 1 / (x.shape[1] * float(x.var()))  # scikit-learn's gamma="scale", of all the training pixels

        def svm(C: float, gamma: float):
            return _svm(C, gamma, dims)

        grid = [{"C": c, "gamma": g * unit} for c in SVM_C for g in SVM_GAMMA]
        baselines["pixels_svm"] = Baseline(svm, grid, train, test)
    results = chosen_and_scored(baselines, classes, parts)
    if "pixels_svm" in results:
        results["pixels_svm"]["pca_dims"] = dims
    return results


def pixel_baselines(train: Dataset, test: Dataset, *, max_side: int = 32, limit: int = 20000) -> dict[str, dict]:
    """``{"pixels_logreg": {test_acc, test_macro_f1, C}, "pixels_svm": {test_acc, test_macro_f1, C, gamma,
    pca_dims}}`` on ``train`` and ``test`` items (image (C, H, W) float, int label) read through the evaluation
    transform; ``pixels_svm`` is absent (with a warning) above ``SVM_MAX_TRAIN`` training images."""
    if max_side < 1 or limit < 2:
        raise ValueError(f"{WHO}: expected max_side >= 1 and limit >= 2, got {max_side}, {limit}")
    n = len(train)
    order = np.arange(n) if n <= limit else np.sort(np.random.default_rng(0).choice(n, limit, replace=False))
    x, y = _pixels(train, order, max_side)
    xt, yt = _pixels(test, np.arange(len(test)), max_side)
    if x.shape[1] != xt.shape[1]:
        raise ValueError(f"{WHO}: train and test images differ in size ({x.shape[1]} vs {xt.shape[1]} px)")
    with blas_threads():
        return _fit_and_score(x, y, xt, yt)
