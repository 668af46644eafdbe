"""The segmentation metrics, as sums: pixel counts per class (Dice, the F1 of pixels, IoU, pixel accuracy) and
instance counts at the IoU thresholds 0.5…0.95 (instance F1), each per test condition.

Dice and IoU are means over the classes (besides the background); with several classes each class's Dice is
reported beside the mean. Instance metrics are those of the foreground (every class against the background).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..base import Metric
from ..metrics import confusion_matrix
from .instances import THRESHOLDS, f1_scores, match_counts, split_instances
from .labels import LabelScheme

__all__ = ["class_counts", "class_scores", "instance_scores", "TrainDice", "EvalMetrics"]


def class_counts(pred: Tensor, target: Tensor, classes: int) -> Tensor:
    """Class-index maps -> (correct pixels, pixels, then TP, FP, FN of each class 1…``classes``), float64."""
    confusion = confusion_matrix(pred, target, classes + 1)
    tp = confusion.diag()[1:]
    fp, fn = confusion.sum(0)[1:] - tp, confusion.sum(1)[1:] - tp  # columns: predicted, rows: true
    head = torch.stack([confusion.diag().sum(), confusion.sum()])
    return torch.cat([head, torch.stack([tp, fp, fn], dim=1).flatten()])


def class_scores(counts: Tensor, reported: Sequence[str] = ()) -> dict[str, float]:
    """Dice, IoU (means over the classes) and pixel accuracy from ``class_counts``' (correct, pixels, TP, FP, FN
    per class); then ``dice_<name>`` of each class when ``reported`` names them (all of them, in order)."""
    correct, total = counts[:2].tolist()
    tp, fp, fn = counts[2:].view(-1, 3).unbind(1)
    dice = 2 * tp / (2 * tp + fp + fn).clamp(min=1e-12)
    scores = {
        "dice": dice.mean().item(),
        "iou": (tp / (tp + fp + fn).clamp(min=1e-12)).mean().item(),
        "acc": correct / max(total, 1e-12),
    }
    if reported:
        scores.update({f"dice_{n}": d for n, d in zip(reported, dice.tolist(), strict=True)})
    return scores


def instance_scores(true: np.ndarray, foreground: np.ndarray, *, min_size: int, h: float) -> np.ndarray:
    """(10, 3) instance TP, FP, FN at IoU 0.5 … 0.95 of a predicted foreground against true instance labels."""
    return match_counts(true, split_instances(foreground, min_size=min_size, h=h))


class TrainDice(Metric):
    """Dice of the training crops (the mean over the classes): sums (correct, pixels, TP, FP, FN per class)."""

    def __init__(self, scheme: LabelScheme) -> None:
        super().__init__(2 + 3 * scheme.classes)
        self.scheme = scheme

    def update(self, output: Tensor, target: Tensor, loss: Tensor) -> None:
        # output: (B, maps, H, W) logits of the crops; target: (B, H, W) class indices
        self.sums += class_counts(self.scheme.predict(output.detach()), target, self.scheme.classes)

    def compute(self) -> tuple[dict[str, float], dict]:
        return {"dice": class_scores(self.sums)["dice"]}, {}


class EvalMetrics(Metric):
    """The test images under each condition. Sums: (loss × images, images), then for each condition (correct
    pixels, pixels, TP, FP, FN per class, instance TP, FP, FN at the 10 IoU thresholds). The loss is the one the
    engine gives (``Segment.eval_loss``: the clean condition's)."""

    def __init__(
        self, scheme: LabelScheme, conditions: list[str], *, min_size: int, split_h: float, threshold: float = 0.5
    ) -> None:
        self.pixels = 2 + 3 * scheme.classes  # class_counts' length
        self.width = self.pixels + 3 * len(THRESHOLDS)  # one condition's sums
        super().__init__(2 + self.width * len(conditions))
        self.scheme, self.conditions = scheme, conditions
        self.min_size, self.split_h, self.threshold = min_size, split_h, threshold

    def add(self, condition: int, pred: Tensor, classes: Tensor, instances: Tensor) -> None:
        """One image under condition ``condition``: predicted class indices (H, W) against the truth (class
        indices and instance labels, as ``scheme.truth`` gives them)."""
        pixels = class_counts(pred.cpu(), classes.cpu(), self.scheme.classes)  # (2 + 3·classes,)
        foreground = (pred > 0).cpu().numpy()
        objects = instance_scores(instances.cpu().numpy(), foreground, min_size=self.min_size, h=self.split_h)
        start = 2 + condition * self.width
        self.sums[start : start + self.width] += torch.cat([pixels, torch.from_numpy(objects).flatten()])

    def update(self, output: Tensor, target: Tensor, loss: Tensor) -> None:
        # output: (B, K, maps, H, W) logits of the whole images under the K test conditions; target: (B, H, W)
        # labels; loss: the batch's mean (over its images)
        images = target.shape[0]
        self.sums[:2] += torch.tensor([loss.item() * images, images], dtype=torch.float64)
        for b in range(images):
            classes, instances = self.scheme.truth(target[b])
            pred = self.scheme.predict(output[b].float(), self.threshold)  # (K, H, W): the conditions as a batch
            for k in range(len(self.conditions)):
                self.add(k, pred[k], classes, instances)

    def compute(self) -> tuple[dict[str, float], dict]:
        scalars = {"loss": self.sums[0].item() / max(self.sums[1].item(), 1)}
        details = {}
        for k, name in enumerate(self.conditions):
            s = self.sums[2 + k * self.width : 2 + (k + 1) * self.width]
            f1 = f1_scores(s[self.pixels :].view(len(THRESHOLDS), 3).numpy())
            scores = {**class_scores(s[: self.pixels], self.scheme.reported), "f1": float(f1[0])}
            scores["f1_mean"] = float(f1.mean())
            details[name] = scores
            if k == 0:  # the clean images: the run's main figures
                scalars.update(scores)
            else:
                scalars.update({f"dice_{name}": scores["dice"], f"f1_{name}": scores["f1"]})
        return scalars, {"conditions": details}
