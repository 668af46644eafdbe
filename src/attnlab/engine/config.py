"""A run's resolved arguments: the engine's recipe plus the task's options, written to ``config.json``.

config.json is flat: ``{"task": ..., <recipe fields>, <task option fields>}``, so a run folder reads as
one list of what decided its result. ``out``, ``resume`` and the like are not part of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..tasks import DEFAULT_TASK, RunSource, Task, get_task, options_from_dict

__all__ = ["Recipe", "TrainConfig", "OPTIMIZERS", "SCHEDULES", "RECIPE_FIELDS"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine")


@dataclass
class Recipe:
    """How every task trains; a task overrides the defaults with its ``recipe`` (the CLI's defaults follow)."""

    epochs: int = 10
    batch_size: int = 64  # global, over all processes
    lr: float = 1e-3  # peak learning rate
    optimizer: str = "adamw"  # SGD with Nesterov momentum 0.9, or AdamW
    schedule: str = "onecycle"
    weight_decay: float = 0.05
    seed: int = 0
    freeze_bn: bool = False  # batch-norm layers in eval mode: frozen statistics (fine-tuning, exact DDP checks)
    train_limit: int | None = None  # use only the first N training samples (quick runs)

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "--epochs", "a positive int", self.epochs),
            (self.batch_size >= 1, "--batch-size", "a positive int", self.batch_size),
            (self.lr > 0, "--lr", "a positive number", self.lr),
            (self.weight_decay >= 0, "--weight-decay", "a number >= 0", self.weight_decay),
            (self.optimizer in OPTIMIZERS, "--optimizer", f"one of {OPTIMIZERS}", self.optimizer),
            (self.schedule in SCHEDULES, "--schedule", f"one of {SCHEDULES}", self.schedule),
            (self.train_limit is None or self.train_limit >= 1, "--train-limit", "a positive int", self.train_limit),
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
