"""The video task's classical baselines for clips of any data set: logistic regression on pooled frames, fitted
on the training split and scored once on the test split, in the same run as the network (scikit-learn).

Each clip (T, C, H, W), read once and in order through the dataset's own (evaluation) transform, has its frames
downsampled by area interpolation to at most ``max_side`` px on the shorter side; with x_t the frame t flattened
and d_t = x_{t+1} − x_t its consecutive differences:

- ``mean_frame_logreg``: mean_t x_t, what the clip looks like with its order thrown away;
- ``frame_diff_logreg``: [mean_t x_t, mean_t |d_t|, mean_t d_t]: where things move (the absolute differences, a
  cheap motion-energy image) and which way (the signed mean telescopes to (x_{T−1} − x_0) / (T − 1): where
  things end up minus where they started). The classical motion baseline; a clip played backwards changes only
  the last part's sign.
- ``flow_logreg``: dense optical flow between consecutive frames (pyramidal Lucas–Kanade on the gray frames,
  ``attnlab.models.flow``), averaged over a ``FLOW_GRID``×``FLOW_GRID`` grid of cells, for each of the T − 1 frame
  pairs in order: which way things move, where and when (a camera pan or zoom is one linear function of it). The
  classical motion descriptor, and the one the video model's ``--motion flow`` puts beside each frame.

Both: standardized features, multinomial logistic regression (L-BFGS, L2), C from ``LOGREG_C`` chosen on a
validation part carved from the training clips only, then refitted on all training clips and scored on test
(``attnlab.tasks.classical``, as the classify task's baselines); the chosen C comes back beside the scores. Macro
F1 averages over all ``num_classes`` classes.

Measured on an AMD EPYC, 2 cores shared with other test runs (load average 3.5-4), torch 2.14.1, scikit-learn
1.9.1, BLAS on 1 thread, reading included; test accuracies (mean frame / frame differences):

- a bright square moving left or right (the tests' clips), 200 / 100 clips of 8×1×24×24: 0.3-1.8 s, 0.45 / 1.00;
- moving_digits, 4,000 / 1,000 clips of 8×1×32×32, 20 classes (digit × direction): 21.6 s (reading 0.4 s),
  0.405 / 0.837 (C = 0.1 / 0.01). A videofolder's clips are decoded as they are read: that part is the
  network's evaluation pass again, once over each split.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ...models.flow import ClipFlow
from ..classical import LOGREG_C, Baseline, blas_threads, carve, chosen_and_scored, downsample, logreg, read_rows

__all__ = ["LOGREG_C", "frame_baselines", "frame_features"]

WHO = "frame baselines"
FLOW_GRID = 4  # cells a side over which each frame pair's flow is averaged
CHUNK = 64  # clips whose flow is computed in one batch


def flow_features(clips: Tensor, grid: int = FLOW_GRID) -> Tensor:
    """Clips (K, T, C, H, W) -> (K, (T − 1)·2·grid²): the flow of each frame to the next averaged over
    ``grid``×``grid`` cells: the video model's motion descriptor (``ClipFlow``), its repeated last frame left out."""
    return ClipFlow(grid)(clips)[:, :-1].flatten(1)


def _frame_parts(clip: Tensor, max_side: int) -> Tensor:
    """[mean frame, mean |difference|, mean difference] of one clip (T, C, H, W), downsampled: (3·C·h·w,)."""
    if clip.ndim != 4 or clip.shape[0] < 2:
        raise ValueError(f"{WHO}: expected a clip (T >= 2, C, H, W), got shape {tuple(clip.shape)}")
    frames = downsample(clip.float(), max_side).flatten(1)  # (T, C·h·w): T as the batch
    diff = frames[1:] - frames[:-1]  # (T − 1, C·h·w)
    return torch.cat([frames.mean(0), diff.abs().mean(0), diff.mean(0)])


def frame_features(clip: Tensor, max_side: int = 32) -> np.ndarray:
    """One clip (T, C, H, W) -> float32 (3·C·h·w + (T − 1)·2·FLOW_GRID²,): [mean frame, mean |difference|, mean
    difference, flow], the frames downsampled to at most ``max_side`` px on the shorter side (area
    interpolation), the flow (``flow_features``) at the clip's own size."""
    return torch.cat([_frame_parts(clip, max_side), flow_features(clip[None])[0]]).numpy()


def _read(data: Dataset, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """All clips of ``data``, in order: ``frame_features`` rows (N, D) and labels (N,), the flow computed for
    ``CHUNK`` clips at once (one batch of frame pairs, faster than clip by clip)."""

    def parts(clip: Tensor) -> np.ndarray:
        return _frame_parts(clip, max_side).numpy()

    return read_rows(data, range(len(data)), parts, WHO, batched=flow_features, chunk=CHUNK)


def frame_baselines(train: Dataset, test: Dataset, num_classes: int, *, max_side: int = 32) -> dict[str, dict]:
    """``{"mean_frame_logreg": {test_acc, test_macro_f1, C}, "frame_diff_logreg": {…}, "flow_logreg": {…}}`` on
    ``train`` and ``test`` items (clip (T, C, H, W) float, int label) read through the evaluation transform."""
    if max_side < 1 or num_classes < 2:
        raise ValueError(f"{WHO}: expected max_side >= 1 and num_classes >= 2, got {max_side}, {num_classes}")
    x, y = _read(train, max_side)
    xt, yt = _read(test, max_side)
    if x.shape[1] != xt.shape[1]:
        raise ValueError(f"{WHO}: train and test clips differ in size ({x.shape[1]} vs {xt.shape[1]})")
    if min(y.min(), yt.min()) < 0 or max(y.max(), yt.max()) >= num_classes:
        raise ValueError(f"{WHO}: labels outside 0..{num_classes - 1}")
    frames = x.shape[1] - (len(train[0][0]) - 1) * 2 * FLOW_GRID**2  # the three frame parts, then the flow
    columns = {
        "mean_frame_logreg": slice(0, frames // 3),
        "frame_diff_logreg": slice(0, frames),
        "flow_logreg": slice(frames, None),
    }
    classes, parts, grid = np.arange(num_classes), carve(y, WHO), [{"C": c} for c in LOGREG_C]
    baselines = {name: Baseline(logreg, grid, (x[:, cols], y), (xt[:, cols], yt)) for name, cols in columns.items()}
    with blas_threads():
        return chosen_and_scored(baselines, classes, parts)
