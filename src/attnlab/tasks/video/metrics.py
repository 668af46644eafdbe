"""The video task's evaluation metrics: the classification metrics (loss, top-1, top-5, per class, confusion) and,
where the data's classes are made of parts (``meta["label_parts"]``, e.g. moving_digits' digit and direction),
each part's accuracy, read from the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..metrics import ClassificationMetrics

__all__ = ["ClipMetrics", "label_part"]


def label_part(labels: Tensor, parts: Sequence[tuple[str, int]], i: int) -> Tensor:
    """Part ``i`` of class indices whose class is the mixed-radix number of ``parts`` [(name, count), …], the last
    part varying fastest: moving_digits' class digit·2 + direction has digit = class // 2, direction = class % 2."""
    below = 1
    for _, count in parts[i + 1 :]:
        below *= count
    return labels // below % parts[i][1]


class ClipMetrics(ClassificationMetrics):
    """The classification metrics, and ``<part>_acc`` for each of ``label_parts`` (none: the plain metrics)."""

    def __init__(self, num_classes: int, label_parts: Sequence[tuple[str, int]] = ()) -> None:
        super().__init__(num_classes)
        self.parts = [(str(name), int(count)) for name, count in label_parts]

    def compute(self) -> tuple[dict[str, float], dict]:
        scalars, details = super().compute()
        if self.parts:
            confusion = self.sums[3:].view(self.k, self.k)  # rows: true, columns: predicted
            n = confusion.sum().item()
            true, pred = torch.meshgrid(torch.arange(self.k), torch.arange(self.k), indexing="ij")
            for i, (name, _) in enumerate(self.parts):
                same = label_part(true, self.parts, i) == label_part(pred, self.parts, i)
                scalars[f"{name}_acc"] = confusion[same].sum().item() / n
        return scalars, details
