"""The text task's metric: accuracy and macro-F1 from a confusion matrix of sums, and the task's loss."""

from __future__ import annotations

import torch
from torch import Tensor

from ..base import Metric
from ..metrics import confusion_matrix

__all__ = ["TextMetrics"]


class TextMetrics(Metric):
    """Sums (loss·n, n, confusion K×K; rows true, columns predicted) -> loss (in evaluation; training's is the
    engine's own), accuracy, and macro-F1: the mean over classes of F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k).

    A class neither true nor predicted anywhere counts as F1 0 (scikit-learn's ``f1_score(average="macro")``
    leaves it out of the mean); with every class present both agree."""

    def __init__(self, num_classes: int, *, training: bool) -> None:
        super().__init__(2 + num_classes**2)
        self.k, self.training = num_classes, training

    def update(self, output: Tensor, target: Tensor, loss: Tensor) -> None:
        n = target.shape[0]
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
