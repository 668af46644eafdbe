"""Length-grouped batches for variable-length samples (texts, clips): less padding, the same data per epoch.

Each epoch: a seeded permutation of the samples (as ``DistributedSampler``), cut into mega-batches of
``group`` global batches; within each, samples sorted by length, longest first; batches then taken in a
seeded random order. Every rank takes every ``world_size``-th index of the global order, so the ranks'
batches together are the one-process batches (as with ``DistributedSampler``). Deterministic in
(seed, epoch): resuming repeats the epoch exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

__all__ = ["LengthGroupedSampler"]


class LengthGroupedSampler(Sampler[int]):
    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        world_size: int = 1,
        rank: int = 0,
        seed: int = 0,
        group: int = 50,
    ) -> None:
        self.lengths, self.batch, self.world, self.rank = list(lengths), batch_size, world_size, rank
        self.seed, self.group, self.epoch = seed, group, 0
        self.per_rank = len(self.lengths) // world_size  # as DistributedSampler(drop_last=True) would keep
        self.num_samples = self.per_rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_order(self) -> list[int]:
        """This epoch's order of all samples (before the split across ranks)."""
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        perm = torch.randperm(len(self.lengths), generator=g).tolist()
        mega = self.batch * self.group
        batches = []
        for start in range(0, len(perm), mega):
            chunk = sorted(perm[start : start + mega], key=lambda i: -self.lengths[i])
            batches += [chunk[i : i + self.batch] for i in range(0, len(chunk), self.batch)]
        order = torch.randperm(len(batches), generator=g).tolist()
        return [i for b in order for i in batches[b]]

    def __iter__(self) -> Iterator[int]:
        order = self.global_order()[: self.per_rank * self.world]
        return iter(order[self.rank :: self.world])

    def __len__(self) -> int:
        return self.num_samples
