"""One class or several: how the segmentation task's labels are encoded, decided once from ``--classes``
(``label_scheme``). Everything that differs between the two lives here; the rest of the task asks its scheme.

Words, everywhere in the task: **classes** are the N classes *besides the background* (``--classes N``, their
count; ``meta["classes"]``, their names). The model has ``num_outputs`` logit maps: 1 for one class, N + 1 for
several (the background's map first). A mask's **labels** (H, W) are instance labels with one class (0 the
background, each object its own number) and class indices 0…N with several.

    one class (``Binary``)             several (``Multiclass``)
    1 logit map                        N + 1 logit maps
    BCE + soft Dice                    cross-entropy + the classes' soft Dice
    foreground: logit > 0              argmax over the maps
    truth: labels > 0, the labels      truth: the labels, the foreground's connected regions
    masks: binary or instance labels   masks: class indices 0…N
    baseline: Otsu                     baseline: multi-Otsu
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .baselines import multi_otsu_classes, otsu_foreground
from .files import read_class_mask, read_mask
from .losses import binary_loss, multiclass_loss

__all__ = ["LabelScheme", "Binary", "Multiclass", "label_scheme"]


class LabelScheme:
    """What depends on one class or several. Shapes: logits (B, num_outputs, H, W), class indices (B, H, W) or
    (H, W) int64, labels (H, W) int64, images (C, H, W)."""

    classes: int  # N, the classes besides the background
    names: list[str]  # their names (meta["classes"])
    num_outputs: int  # the model's logit maps
    reported: list[str]  # the classes whose own Dice is reported beside the mean (none when the mean is the one)
    baseline_name: str  # the classical baseline's name in summary.json
    note: str  # what segfolder's notes say about the masks

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """The batch's loss against class indices ``target``."""
        raise NotImplementedError

    def predict(self, logits: Tensor, threshold: float = 0.5) -> Tensor:
        """Logits (B, maps, H, W) -> class indices (B, H, W); ``threshold``: the foreground's probability (one
        class; several: the argmax, no threshold)."""
        raise NotImplementedError

    def foreground_probability(self, logits: Tensor) -> Tensor:
        """Logits (B, maps, H, W) -> the probability (B, H, W) that a pixel is foreground (any class)."""
        raise NotImplementedError

    def class_indices(self, labels: Tensor) -> Tensor:
        """A mask's labels -> class indices (the loss's and the pixel metrics' truth)."""
        raise NotImplementedError

    def instances(self, labels: Tensor) -> Tensor:
        """A mask's labels (H, W) -> instance labels (H, W) on the CPU (the instance metrics' truth)."""
        raise NotImplementedError

    def truth(self, labels: Tensor) -> tuple[Tensor, Tensor]:
        """(class indices, instance labels) of a test image's labels (H, W)."""
        return self.class_indices(labels), self.instances(labels)

    def read_mask(self, path: Path) -> np.ndarray:
        """A mask file -> labels (H, W) int64; errors name the file."""
        raise NotImplementedError

    def baseline(self, image: np.ndarray) -> np.ndarray:
        """The classical baseline's class indices (H, W) int64 of a normalized image (C, H, W)."""
        raise NotImplementedError

    def mask_image(self, classes: np.ndarray, instances: np.ndarray) -> np.ndarray:
        """What ``predict`` writes as the mask PNG, from the predicted class indices and the cleaned instances."""
        raise NotImplementedError


class Binary(LabelScheme):
    """One class: foreground against background, one logit map."""

    def __init__(self) -> None:
        self.classes, self.num_outputs = 1, 1
        self.names, self.reported = ["foreground"], []
        self.baseline_name, self.note = "otsu", ""

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return binary_loss(logits, target)

    def predict(self, logits: Tensor, threshold: float = 0.5) -> Tensor:
        return (logits[:, 0] > math.log(threshold / (1 - threshold))).long()  # p > threshold, as a logit

    def foreground_probability(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits[:, 0].float())

    def class_indices(self, labels: Tensor) -> Tensor:
        return (labels > 0).long()

    def instances(self, labels: Tensor) -> Tensor:
        return labels

    def read_mask(self, path: Path) -> np.ndarray:
        return read_mask(path)

    def baseline(self, image: np.ndarray) -> np.ndarray:
        return otsu_foreground(image).astype(np.int64)

    def mask_image(self, classes: np.ndarray, instances: np.ndarray) -> np.ndarray:
        return (instances > 0) * 255  # the cleaned foreground as 0/255


class Multiclass(LabelScheme):
    """N > 1 classes and the background: N + 1 logit maps; instances are the foreground's connected regions."""

    def __init__(self, classes: int) -> None:
        self.classes, self.num_outputs = classes, classes + 1
        self.names = [f"class{k}" for k in range(1, classes + 1)]
        self.reported = self.names
        self.baseline_name = "multi_otsu"
        self.note = f"; {classes} classes (masks of class indices 0-{classes}, 0 the background)"

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return multiclass_loss(logits, target)

    def predict(self, logits: Tensor, threshold: float = 0.5) -> Tensor:
        return logits.argmax(1)

    def foreground_probability(self, logits: Tensor) -> Tensor:
        return 1 - torch.softmax(logits.float(), 1)[:, 0]

    def class_indices(self, labels: Tensor) -> Tensor:
        return labels

    def instances(self, labels: Tensor) -> Tensor:
        from skimage.measure import label

        return torch.from_numpy(label(labels.cpu().numpy() > 0, connectivity=1).astype(np.int64))

    def read_mask(self, path: Path) -> np.ndarray:
        return read_class_mask(path, self.classes)

    def baseline(self, image: np.ndarray) -> np.ndarray:
        return multi_otsu_classes(image, self.classes)  # class k the k-th band of brightness

    def mask_image(self, classes: np.ndarray, instances: np.ndarray) -> np.ndarray:
        return classes  # each pixel's class index 0…N


def label_scheme(classes: int) -> LabelScheme:
    """The scheme of ``--classes``: the one place the task decides between one class and several."""
    return Binary() if classes == 1 else Multiclass(classes)
