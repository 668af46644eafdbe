"""A run's resolved arguments: the engine's recipe plus the task's options, written to ``config.json``.

config.json is flat: ``{"task": ..., <recipe fields>, <task option fields>}``, so a run folder reads as
one list of what decided its result. ``out``, ``resume`` and the like are not part of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..tasks import DEFAULT_TASK, RunSource, Task, get_task, options_from_dict
from .precision import PRECISIONS

__all__ = ["Recipe", "TrainConfig", "OPTIMIZERS", "SCHEDULES", "RECIPE_FIELDS"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine")


@dataclass
class Recipe:
    """How every task trains; a task overrides the defaults with its ``recipe`` (the CLI's defaults follow).

    ``epochs``, ``batch_size`` and ``lr`` left at None are derived from the number of training samples
    (``engine.plan``): ``samples_seen`` in all, a batch of ``base_batch`` unless an epoch would then have fewer
    than ``min_steps`` steps, the learning rate ``base_lr`` scaled to the batch. Given, they are used as they are.
    """

    epochs: int | None = None
    batch_size: int | None = None  # global, over all processes
    lr: float | None = None  # peak learning rate
    samples_seen: int = 50_000  # training samples seen in a run whose --epochs is not given
    max_epochs: int = 100  # the most epochs derived from ``samples`` (tiny data sets)
    base_batch: int = 64  # the batch where an epoch has at least ``min_steps`` steps
    base_lr: float = 1e-3  # the peak learning rate at ``base_batch``
    min_steps: int = 10  # the fewest optimizer steps an epoch should have: a smaller batch below that
    optimizer: str = "adamw"  # SGD with Nesterov momentum 0.9, or AdamW
    schedule: str = "onecycle"
    weight_decay: float = 0.05
    seed: int = 0
    val_fraction: float = 0.1  # of each class, carved from the training split when the data has no validation
    early_stop: int = 0  # stop after this many epochs without a better validation metric (0: never)
    ema: float = 0.0  # decay of the weights' moving average that validation and test see (0: none; engine.averaging)
    precision: str = "auto"  # fp32, bf16 autocast, or auto (engine.precision)
    freeze_bn: bool = False  # batch-norm layers in eval mode: frozen statistics (fine-tuning, exact DDP checks)
    train_limit: int | None = None  # use only the first N training samples (quick runs)

    def __post_init__(self) -> None:
        positive = lambda v: v is None or v >= 1  # noqa: E731
        checks = [
            (positive(self.epochs), "--epochs", "a positive int", self.epochs),
            (positive(self.batch_size), "--batch-size", "a positive int", self.batch_size),
            (self.lr is None or self.lr > 0, "--lr", "a positive number", self.lr),
            (self.samples_seen >= 1, "--samples-seen", "a positive int", self.samples_seen),
            (self.max_epochs >= 1, "--max-epochs", "a positive int", self.max_epochs),
            (self.base_batch >= 1, "--base-batch", "a positive int", self.base_batch),
            (self.base_lr > 0, "--base-lr", "a positive number", self.base_lr),
            (self.min_steps >= 1, "--min-steps", "a positive int", self.min_steps),
            (self.weight_decay >= 0, "--weight-decay", "a number >= 0", self.weight_decay),
            (self.optimizer in OPTIMIZERS, "--optimizer", f"one of {OPTIMIZERS}", self.optimizer),
            (self.schedule in SCHEDULES, "--schedule", f"one of {SCHEDULES}", self.schedule),
            (0 < self.val_fraction <= 0.5, "--val-fraction", "a number in (0, 0.5]", self.val_fraction),
            (self.early_stop >= 0, "--early-stop", "an int >= 0 (0: never)", self.early_stop),
            (self.ema == 0 or 0.5 <= self.ema < 1, "--ema", "0 (none) or a decay in [0.5, 1)", self.ema),
            (self.precision in PRECISIONS, "--precision", f"one of {PRECISIONS}", self.precision),
            (positive(self.train_limit), "--train-limit", "a positive int", self.train_limit),
        ]
        for ok, name, expected, got in checks:
            if not ok:
                raise ValueError(f"{name}: expected {expected}, got {got!r}")


RECIPE_FIELDS = tuple(f.name for f in fields(Recipe))


@dataclass
class TrainConfig:
    """Everything that decides a run's result: the task, the recipe, the task's options."""

    task: str
    recipe: Recipe
    options: Any  # the task's Options dataclass

    @classmethod
    def create(cls, task: str = DEFAULT_TASK, **values) -> TrainConfig:
        """``TrainConfig.create("classify", attention="se", epochs=3)``: recipe fields go to the recipe (over the
        task's defaults), the rest to the task's options; an unknown name is refused."""
        t = get_task(task)
        recipe = {k: v for k, v in values.items() if k in RECIPE_FIELDS}
        rest = {k: v for k, v in values.items() if k not in RECIPE_FIELDS}
        return cls(task, Recipe(**{**t.recipe, **recipe}), options_from_dict(t.Options, rest, task=task))

    @property
    def task_class(self) -> type[Task]:
        return get_task(self.task)

    def new_task(self, *, meta: dict | None = None, runs: RunSource | None = None) -> Task:
        """The task bound to these options (and to a run's data ``meta`` where it is known)."""
        return self.task_class(self.options, meta=meta, runs=runs)

    def replace(self, **values) -> TrainConfig:
        """A copy with some recipe fields or options changed (compare's rows)."""
        return TrainConfig.create(self.task, **{**self._flat(), **values})

    def _flat(self) -> dict:
        return {**asdict(self.recipe), **asdict(self.options)}

    def to_dict(self) -> dict:
        return {"task": self.task, **self._flat()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A config.json back; runs from before tasks existed (no "task" key) are the default task's."""
        d = dict(d)
        task = d.pop("task", DEFAULT_TASK)
        d = {get_task(task).renamed.get(k, k): v for k, v in d.items()}
        known = set(RECIPE_FIELDS) | {f.name for f in dataclasses.fields(get_task(task).Options)}
        return cls.create(task, **{k: v for k, v in d.items() if k in known})
