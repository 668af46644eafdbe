"""The text task's metrics: one label per text, accuracy and macro-F1 from a confusion matrix of sums; several
labels per text (``--multi-label``), micro- and macro-F1, subset accuracy and Hamming loss from per-class counts
at one decision threshold, and the threshold chosen on validation."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ...models.text_ensemble import member_mean
from ..base import Metric
from ..metrics import confusion_matrix

__all__ = [
    "DEFAULT_THRESHOLD",
    "MultiLabelMetrics",
    "TextMetrics",
    "choose_threshold",
    "label_scores",
    "multilabel_scores",
]

DEFAULT_THRESHOLD = 0.5  # a label is on when its score reaches it, until the run chooses one on validation
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)  # 0.05, 0.10, …, 0.95


class TextMetrics(Metric):
    """Sums (loss·n, n, confusion K×K; rows true, columns predicted) -> loss (in evaluation; training's is the
    engine's own), accuracy, and macro-F1: the mean over classes of F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k).

    A class neither true nor predicted anywhere counts as F1 0 (scikit-learn's ``f1_score(average="macro")``
    leaves it out of the mean); with every class present both agree."""

    def __init__(self, num_classes: int, *, training: bool) -> None:
        super().__init__(2 + num_classes**2)
        self.k, self.training = num_classes, training

    def update(self, output: Tensor, target: Tensor, loss: Tensor) -> None:
        n, output = target.shape[0], member_mean(output)  # an ensemble's training scores: the members' mean
        self.sums[:2] += torch.tensor([loss.item() * n, n], dtype=torch.float64)
        self.sums[2:] += confusion_matrix(output.float().argmax(1), target, self.k).flatten()

    def compute(self) -> tuple[dict[str, float], dict]:
        loss, n = self.sums[:2].tolist()
        confusion = self.sums[2:].view(self.k, self.k)
        tp = confusion.diag()
        f1 = 2 * tp / (confusion.sum(0) + confusion.sum(1)).clamp(min=1)  # 2 TP + FP + FN = predicted + true
        scalars = {"acc": tp.sum().item() / n, "macro_f1": f1.mean().item()}
        if not self.training:
            scalars = {"loss": loss / n, **scalars}
        return scalars, {"confusion": confusion.long().tolist()}


def label_scores(output: Tensor, head: str) -> Tensor:
    """(B, K) scores in [0, 1] of each label, from the network's output with several labels per text: the capsule
    head's lengths as they are, the other heads' logits through a sigmoid."""
    return output.float() if head == "capsule" else output.float().sigmoid()


def _counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(3, K): true positives, false positives, false negatives of each class."""
    t, p = y_true.astype(bool), y_pred.astype(bool)
    return np.stack([(t & p).sum(0), (~t & p).sum(0), (t & ~p).sum(0)]).astype(np.float64)


def _scores_of(counts: np.ndarray, exact: float, n: float) -> dict[str, float]:
    """Scores from per-class (TP, FP, FN) ``counts`` (3, K), the number of texts whose labels all match and n."""
    tp, fp, fn = counts
    k = counts.shape[1]
    micro_den = 2 * tp.sum() + fp.sum() + fn.sum()
    per_class = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(k), where=(2 * tp + fp + fn) > 0)
    return {
        "micro_f1": float(2 * tp.sum() / micro_den) if micro_den else 0.0,
        "macro_f1": float(per_class.mean()),
        "subset_acc": exact / n if n else 0.0,
        "hamming_loss": float((fp.sum() + fn.sum()) / (n * k)) if n else 0.0,
    }


def multilabel_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``micro_f1``, ``macro_f1``, ``subset_acc`` (every label of a text right) and ``hamming_loss`` (the share of
    wrong text-label pairs) of (N, K) 0/1 arrays: scikit-learn's ``f1_score(average="micro" | "macro",
    zero_division=0)``, ``accuracy_score`` and ``hamming_loss`` on multi-label indicators (tested): a class with no
    true and no predicted label counts F1 0 in the macro mean."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    exact = float((y_true.astype(bool) == y_pred.astype(bool)).all(1).sum())
    return _scores_of(_counts(y_true, y_pred), exact, float(len(y_true)))


def choose_threshold(scores: np.ndarray, y_true: np.ndarray) -> tuple[float, float]:
    """(threshold, its micro-F1): the one global threshold of ``THRESHOLD_GRID`` (0.05, 0.10, …, 0.95) with the
    highest micro-F1 of ``scores >= threshold`` against ``y_true`` (N, K); ties: the one nearest 0.5."""
    best = None
    for t in sorted(THRESHOLD_GRID, key=lambda t: (abs(t - DEFAULT_THRESHOLD), t)):
        f1 = multilabel_scores(y_true, scores >= t)["micro_f1"]
        if best is None or f1 > best[1]:
            best = (float(t), f1)
    return best


class MultiLabelMetrics(Metric):
    """Several labels per text: sums (loss·n, n, texts with every label right, per class TP, FP, FN) at the
    decision ``threshold`` on ``label_scores`` -> loss (in evaluation), ``micro_f1``, ``macro_f1``,
    ``subset_acc``, ``hamming_loss`` (``multilabel_scores``); details: each class's counts."""

    def __init__(self, num_classes: int, *, head: str, threshold: float, training: bool) -> None:
        super().__init__(3 + 3 * num_classes)
        self.k, self.head, self.threshold, self.training = num_classes, head, threshold, training

    def update(self, output: Tensor, target: Tensor, loss: Tensor) -> None:
        n, output = target.shape[0], member_mean(output)  # an ensemble's training scores: the members' mean
        predicted = (label_scores(output.detach(), self.head) >= self.threshold).cpu().numpy()
        truth = target.detach().cpu().numpy() > 0.5
        exact = float((predicted == truth).all(1).sum())
        self.sums[:3] += torch.tensor([loss.item() * n, n, exact], dtype=torch.float64)
        self.sums[3:] += torch.from_numpy(_counts(truth, predicted).flatten())

    def compute(self) -> tuple[dict[str, float], dict]:
        loss, n, exact = self.sums[:3].tolist()
        counts = self.sums[3:].view(3, self.k).numpy()
        scalars = _scores_of(counts, exact, n)
        if not self.training:
            scalars = {"loss": loss / n if n else 0.0, **scalars}
        tp, fp, fn = counts.astype(np.int64).tolist()
        return scalars, {"threshold": self.threshold, "per_class": {"tp": tp, "fp": fp, "fn": fn}}
