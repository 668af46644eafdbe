"""A tiny task for the engine's tests: 96 points in 8-D, 3 classes, a two-layer MLP.

Registered as ``fake_max`` (best checkpoint by the highest val_acc) and ``fake_min`` (by the lowest
val_loss). Run as a script it is the attnlab CLI with these tasks registered (for subprocesses and torchrun):

    python tests/helpers/fake_task.py train --task fake_max --out DIR
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from attnlab.tasks import TASKS, Metric, Task, TaskData, option, register_task


@dataclass
class FakeOptions:
    hidden: int = option(16, "hidden width of the MLP")
    noise: float = option(1.0, "spread of the points around their class centres")
    step_delay: float = option(0.0, "seconds of sleep per training batch (to kill a run mid-epoch)")


def points(n: int, seed: int, noise: float) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.eye(3, 8) * 2
    return TensorDataset(centres[y] + noise * torch.randn(n, 8, generator=g), y)


class Sums(Metric):
    """(loss·n, correct, n): cross-entropy and accuracy."""

    def __init__(self) -> None:
        super().__init__(3)

    def update(self, output, target, loss) -> None:
        ce = F.cross_entropy(output.float(), target, reduction="sum")
        correct = (output.argmax(1) == target).sum()
        self.sums += torch.tensor([ce.item(), correct.item(), target.shape[0]], dtype=torch.float64)

    def compute(self):
        loss, correct, n = self.sums.tolist()
        return {"loss": loss / n, "acc": correct / n}, {"n": n}


class FakeTask(Task):
    Options = FakeOptions
    recipe = {"epochs": 3, "batch_size": 16, "lr": 0.05, "optimizer": "sgd"}
    unit = "points"
    description = "test task"
    eval_batch_size = 8  # several batches per rank: the reduction is exercised

    def build_data(self, options, *, download=False) -> TaskData:
        return TaskData(points(96, 0, options.noise), points(48, 1, options.noise), {"classes": 3})

    def build_model(self, options, meta) -> nn.Module:
        self.build_model_hook(options)
        return nn.Sequential(nn.Linear(8, options.hidden), nn.ReLU(), nn.Linear(options.hidden, meta["classes"]))

    def example_input(self, options, meta, batch=1):
        return (torch.zeros(batch, 8),)

    def forward(self, model, inputs, options, *, training):
        if training and self.delay:
            time.sleep(self.delay)
        return model(*inputs)

    delay = 0.0

    def build_model_hook(self, options) -> None:
        type(self).delay = options.step_delay

    def loss(self, output, target, options):
        return F.cross_entropy(output, target)

    def metric(self, options, meta, *, training):
        return Sums()

    def title(self, options) -> str:
        return f"fake MLP {options.hidden}"

    def default_out(self, options) -> Path:
        return Path("runs") / "fake"


if "fake_max" not in TASKS.names():

    @register_task
    class FakeMax(FakeTask):
        name = "fake_max"
        monitor = ("val_acc", "max")

    @register_task
    class FakeMin(FakeTask):
        name = "fake_min"
        monitor = ("val_loss", "min")


if __name__ == "__main__":
    from attnlab.cli import main

    sys.exit(main(sys.argv[1:]))
