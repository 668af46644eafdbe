"""Dropout whose CPU mask costs a fifth of ``nn.Dropout``'s: the text encoder's dropout was a third of its step.

``nn.Dropout`` on a CPU draws its mask with ``bernoulli_``, one call of the serial Mersenne-Twister generator per
element, on one thread: 16 ms for a (64, 256, 128) batch of token features on an Intel Xeon (AMX), torch 2.14.1,
more than the encoder layer's matrix products take (``attnlab bench profile --tasks text``: ``aten::bernoulli_``
34 % of a training step). Here one 64-bit draw gives four elements 16 random bits each,
and an element is kept where its bits clear a threshold: the same kind of mask (independent, kept with
probability 1 − p′, scaled by 1 / (1 − p′)) for p′ = round(65,536 · p) / 65,536, within 8e-6 of p, in 2-3 ms.
Deterministic under ``torch.manual_seed`` like ``nn.Dropout``; a different stream of numbers, so a run's masks
are not ``nn.Dropout``'s. CUDA (whose dropout kernel is fused and fast), evaluation and p = 0 or 1 are
``nn.Dropout``'s own. Under ``torch.compile`` the in-place draw is a graph break (it compiles and runs); the
out-of-place ``torch.randint`` over the same range would trace, but offsets each word by its low end, which
flips the top lane's sign bit: other masks than the ones the documented runs were measured with.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Dropout", "keep_mask"]

LEVELS = 1 << 16  # the mask's resolution: 16 random bits an element


def keep_mask(shape: torch.Size, p: float) -> tuple[Tensor, float]:
    """(bool mask of ``shape``, True where kept with probability 1 − p′; the keep scale 1 / (1 − p′))."""
    n = shape.numel()
    dropped = round(p * LEVELS)  # p′ · 65,536 of the 65,536 values of an int16 lane are dropped
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)
    lanes = words.view(torch.int16)[:n].view(shape)  # uniform on [-32,768, 32,767], independent
    return lanes >= dropped - LEVELS // 2, LEVELS / (LEVELS - dropped)


class Dropout(nn.Dropout):
    """``nn.Dropout(p)`` (same arguments, no state), its CPU training mask from ``keep_mask``."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or x.device.type != "cpu" or self.p in (0.0, 1.0):
            return super().forward(x)
        keep, scale = keep_mask(x.shape, self.p)
        if self.inplace:
            return x.mul_(keep).mul_(scale)
        return x * keep * scale
