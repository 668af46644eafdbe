"""A fifth task that lives only in the tests: 96 points in 8-D, 3 classes, a two-layer MLP, in this one file.

Registered as ``fake_max`` (best checkpoint by the highest val_acc) and ``fake_min`` (by the lowest val_loss),
with its model ``fake_mlp`` in the model registry and a command-line face (predict on CSV files of 8 numbers,
its own ``--digits`` flag; no picture). It proves that a new task is one file plus its registration: train,
eval, compare, predict, visualize, export and list work without any edit outside this file.
Run as a script it is the attnlab CLI with these tasks registered (for subprocesses and torchrun):

    python tests/helpers/fake_task.py train --task fake_max --out DIR
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from attnlab.models.registry import list_models, register_model
from attnlab.tasks import TASKS, DataSets, Metric, Prerequisite, Task, TaskCLI, TaskData, option, register_task


@dataclass
class FakeOptions:
    hidden: int = option(16, "hidden width of the MLP")
    noise: float = option(1.0, "spread of the points around their class centres")
    step_delay: float = option(0.0, "seconds of sleep per training batch (to kill a run mid-epoch)")
    data: str = option("points", "points (the only data set)")
    head: str = option("linear", "a name whose choices differ from other tasks' --head", choices=("linear", "mlp"))
    needs: str | None = option(None, "a fake_max run folder this run needs: trained first when missing")


FAKE_DATA = DataSets("fake")


def points(n: int, seed: int, noise: float) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.eye(3, 8) * 2
    return TensorDataset(centres[y] + noise * torch.randn(n, 8, generator=g), y)


if "points" not in FAKE_DATA.names():

    @FAKE_DATA.register("points")
    def points_data(options: FakeOptions, *, download: bool = False) -> TaskData:
        meta = {"classes": 3, "notes": [f"points: 96 train, 48 test, noise {options.noise}"]}
        return TaskData(points(96, 0, options.noise), points(48, 1, options.noise), meta)


if "fake_mlp" not in list_models():

    @register_model("fake_mlp")
    def fake_mlp(*, num_classes: int = 3, hidden: int = 16, head: str = "linear") -> nn.Module:
        last = nn.Linear(hidden, num_classes) if head == "linear" else nn.Sequential(nn.Linear(hidden, num_classes))
        return nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), last)


class Sums(Metric):
    """(loss·n, correct, n): the task's loss and accuracy."""

    def __init__(self) -> None:
        super().__init__(3)

    def update(self, output, target, loss) -> None:
        n = target.shape[0]
        correct = (output.argmax(1) == target).sum()
        self.sums += torch.tensor([loss.item() * n, correct.item(), n], dtype=torch.float64)

    def compute(self):
        loss, correct, n = self.sums.tolist()
        return {"loss": loss / n, "acc": correct / n}, {"n": n}


class FakeCLI(TaskCLI):
    """predict: a CSV file of 8 numbers -> its class, with ``--digits`` decimals of its probability."""

    @classmethod
    def add_predict_arguments(cls, parser) -> None:
        parser.add_argument("--digits", type=int, default=3, help="decimals of the printed probability")

    @torch.no_grad()
    def predict(self, model, inputs, args):
        rows = []
        for path in inputs:
            try:
                x = torch.tensor([float(v) for v in Path(path).read_text().split(",")])
            except (OSError, ValueError) as e:
                rows.append({"input": path, "error": f"{path}: {e}"})
                continue
            p = model(x[None])[0].softmax(0)
            rows.append({"input": path, "class": int(p.argmax()), "probability": round(float(p.max()), args.digits)})
        return rows


class FakeTask(Task):
    Options = FakeOptions
    CLI = FakeCLI
    recipe = {
        "samples_seen": 261,
        "base_batch": 16,
        "base_lr": 0.05,
        "min_steps": 1,
        "optimizer": "sgd",
    }  # 3 epochs of 87
    unit = "points"
    description = "test task"
    eval_batch_size = 8  # several batches per rank: the reduction is exercised

    def check_names(self) -> None:
        FAKE_DATA.get(self.options.data)

    def prerequisites(self) -> list[Prerequisite]:
        if self.options.needs is None:
            return []
        return [
            Prerequisite(Path(self.options.needs), "fake_max", {"epochs": 1}, "fake: this run needs a fake_max run")
        ]

    def build_data(self, *, download=False) -> TaskData:
        return FAKE_DATA.build(self.options.data, self.options, download=download)

    def build_model(self) -> nn.Module:
        o = self.options
        return fake_mlp(num_classes=self.meta["classes"], hidden=o.hidden, head=o.head)

    def example_input(self, batch=1):
        return (torch.zeros(batch, 8),)

    def forward_train(self, model, inputs):
        if self.options.step_delay:
            time.sleep(self.options.step_delay)
        return model(*inputs)

    def loss(self, output, target):
        return F.cross_entropy(output, target)

    def metric(self, *, training):
        return Sums()

    def title(self) -> str:
        return f"fake MLP {self.options.hidden}"

    def default_out(self) -> Path:
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


# the environment of the CLI in a subprocess (kill -9, torchrun): one thread, so timings and sums are repeatable
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def history(out: Path) -> list[dict]:
    """A run folder's metrics.jsonl, one dict an epoch."""
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def kill_in_epoch_two(args: list[str], out: Path) -> None:
    """Run ``attnlab ARGS --out OUT`` in a subprocess (this file as the CLI, one thread) and kill -9 it during its
    second epoch: ``args`` must hold ``--step-delay 0.05`` (6 batches of 0.05 s an epoch), so 0.1 s after the first
    epoch's last.json lands the run is mid-way through the second."""
    proc = subprocess.Popen([sys.executable, __file__, *args, "--out", str(out)], env=SUBPROCESS_ENV)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "last.json").is_file():
        time.sleep(0.02)
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if json.loads((out / "last.json").read_text())["epoch"] != 1:
        raise AssertionError("kill_in_epoch_two: the run was not killed in its second epoch")


if __name__ == "__main__":
    from attnlab.cli import main

    sys.exit(main(sys.argv[1:]))
