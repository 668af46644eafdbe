"""An exponential moving average of the weights (``--ema DECAY``), kept beside the trained weights.

After every optimizer step t the average moves toward the weights: ``w̄ ← d_t w̄ + (1 - d_t) w`` with
``d_t = min(DECAY, (1 + t) / (10 + t))``, the warm-up of TensorFlow's ``ExponentialMovingAverage(num_updates=…)``,
so that a short run (a small data set) is not averaged into its first, random weights: the average's horizon
grows with the steps taken up to ``1 / (1 - DECAY)`` steps. Batch-norm statistics are averaged with the weights
(timm's ``ModelEmaV3`` does the same); integer buffers (batch counts) are the model's. Polyak & Juditsky (1992)
for averaging; torch's ``AveragedModel`` keeps the copy.

Validation, the best checkpoint and the test see the average; ``last.safetensors`` keeps both (the trained
weights for the optimizer, the average under ``average.*``), so a resumed run ends where an uninterrupted one does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

__all__ = ["WeightAverage", "PREFIX", "WARMUP"]

PREFIX = "average."  # of the average's tensors in last.safetensors
WARMUP = 10  # d_t = (1 + t) / (WARMUP + t) until it reaches the decay


def _moving_average(decay: float):
    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], steps: Tensor) -> None:
        t = int(steps)
        d = min(decay, (1 + t) / (WARMUP + t))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1 - d)
        else:  # batch counts: an average of counts means nothing
            torch._foreach_copy_(averaged, current)

    return update


class WeightAverage:
    """The moving average of ``model``'s weights and buffers (``model`` itself, not a DDP or compiled wrapper)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.averaged = AveragedModel(model, multi_avg_fn=_moving_average(decay), use_buffers=True)
        self.averaged.eval()

    @property
    def module(self) -> nn.Module:
        """The averaged network: a model like the trained one, to evaluate and to save as the run's weights."""
        return self.averaged.module

    @property
    def steps(self) -> int:
        return int(self.averaged.n_averaged)

    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)

    def tensors(self) -> dict[str, Tensor]:
        """The average's state, to save beside the trained weights (``PREFIX`` keys)."""
        return {PREFIX + k: v for k, v in self.averaged.state_dict().items()}

    def load(self, tensors: dict[str, Tensor], where: str) -> None:
        state = {k[len(PREFIX) :]: v for k, v in tensors.items() if k.startswith(PREFIX)}
        if not state:
            raise ValueError(f"{where} has no averaged weights ({PREFIX}*): it was trained without --ema")
        self.averaged.load_state_dict(state)
