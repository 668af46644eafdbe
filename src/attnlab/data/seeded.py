"""Augmentation draws that depend only on (seed, epoch, sample index).

With them a sample is augmented the same way whichever process, worker or batch position it lands in,
so one process and N processes under torchrun see identical data, and a resumed run repeats its epoch.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

__all__ = ["EpochSeeded", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch of a run: the global RNGs are reseeded with it at the epoch's start, and every
    sample's augmentation seed derives from it."""
    return seed * 1_000_003 + epoch


class EpochSeeded(Dataset):
    """Wraps a dataset; item i of epoch e is drawn with torch's RNG seeded by (seed, e, i)."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        # The CPU generator alone, saved and restored around the item: torch.manual_seed and fork_rng also
        # visit every accelerator backend, which costs more than a digit's whole augmentation.
        cpu = torch.default_generator
        state = cpu.get_state()
        cpu.manual_seed(epoch_seed(self.seed, self.epoch) * 10_000_019 + i)
        try:
            return self.dataset[i]
        finally:
            cpu.set_state(state)
