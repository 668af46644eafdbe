"""Metrics of classification tasks (images, clips): training accuracy, and the evaluation's loss, top-1, top-5,
per-class accuracy and confusion matrix, each as sums that DDP reduces with one all-reduce."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Metric

__all__ = ["TrainAccuracy", "ClassificationMetrics", "confusion_matrix"]


def confusion_matrix(pred: Tensor, target: Tensor, classes: int) -> Tensor:
    """Counts (classes, classes) float64 of class indices of any shape: rows true, columns predicted."""
    counts = torch.bincount((target * classes + pred).flatten().cpu(), minlength=classes * classes)
    return counts.view(classes, classes).double()


class TrainAccuracy(Metric):
    """Training top-1 from the batches as they are trained: sums (correct, n)."""

    def __init__(self) -> None:
        super().__init__(2)

    def update(self, output: Tensor, target: Tensor, loss: Tensor) -> None:
        self.sums += torch.tensor([(output.argmax(1) == target).sum().item(), target.shape[0]], dtype=torch.float64)

    def compute(self) -> tuple[dict[str, float], dict]:
        correct, n = self.sums.tolist()
        return {"acc": correct / n}, {}


class ClassificationMetrics(Metric):
    """The task's loss, top-1, top-5, per-class accuracy and the confusion matrix (rows: true, columns:
    predicted). Sums: (loss·n, top-5 correct, n, confusion K×K)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__(3 + num_classes**2)
        self.k = num_classes

    def update(self, output: Tensor, target: Tensor, loss: Tensor) -> None:
        logits, n = output.float(), target.shape[0]
        k = self.k
        top5 = (logits.topk(min(5, k), dim=1).indices == target[:, None]).any(dim=1).sum()
        self.sums[:3] += torch.tensor([loss.item() * n, top5.item(), n], dtype=torch.float64)
        self.sums[3:] += confusion_matrix(logits.argmax(1), target, k).flatten()

    def compute(self) -> tuple[dict[str, float], dict]:
        loss, top5, n = self.sums[:3].tolist()
        confusion = self.sums[3:].view(self.k, self.k)
        per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
        scalars = {"loss": loss / n, "acc": confusion.diag().sum().item() / n, "top5": top5 / n}
        return scalars, {"per_class_acc": per_class.tolist(), "confusion": confusion.long().tolist()}
