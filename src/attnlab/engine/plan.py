"""A run's epochs, batch and learning rate from the size of its training split (what the recipe leaves open).

A task's recipe says how much training it needs in a form that survives a change of data size: ``samples_seen``
in all, a reference batch ``base_batch`` with its learning rate ``base_lr``, and ``min_steps``, the fewest
optimizer steps an epoch should have. For ``n`` training samples:

- batch: ``base_batch``, unless ``n / base_batch < min_steps``: then the largest power of two with at least
  ``min_steps`` steps an epoch, no smaller than ``MIN_BATCH`` (a data set ten times smaller keeps its steps);
- learning rate: ``base_lr`` scaled to that batch, linearly for SGD (Goyal et al., 2017, "Accurate, Large
  Minibatch SGD") and by the square root for AdamW (the square-root rule of adaptive methods: Krizhevsky, 2014;
  Malladi et al., NeurIPS 2022, "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms");
- epochs: ``samples_seen / (n · size)`` rounded, at least 1 and at most ``max_epochs``: the same training, counted in
  samples, on data of any size, so a run takes about the default run's time. ``size`` is what one training
  sample weighs against the recipe's own (``Task.sample_size``: a 56×56 image counts as four of the default
  run's 28×28 digits), so larger samples are seen fewer times rather than making the run slower.

``--epochs``, ``--batch-size`` and ``--lr`` given by the user win (a batch given without ``--lr`` has the
learning rate scaled to it by the same rule). The plan is a pure function of the recipe and ``n``: runs stay
deterministic, and a resumed run makes the same plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .config import Recipe

__all__ = ["MIN_BATCH", "Plan", "plan_recipe"]

MIN_BATCH = 8


@dataclass(frozen=True)
class Plan:
    recipe: Recipe  # with epochs, batch_size and lr resolved
    note: str  # one line for the log: what was chosen and why
    precision: str | None = None  # resolved by the trainer on its device (engine.precision)

    def to_dict(self) -> dict:
        r = self.recipe
        return {
            "epochs": r.epochs,
            "batch_size": r.batch_size,
            "lr": r.lr,
            "precision": self.precision,
            "note": self.note,
        }


def _batch(recipe: Recipe, n: int) -> tuple[int, str]:
    if recipe.batch_size is not None:
        return recipe.batch_size, "--batch-size"
    if n / recipe.base_batch >= recipe.min_steps:
        return recipe.base_batch, "the recipe's"
    fits = max(MIN_BATCH, 2 ** int(math.floor(math.log2(max(1.0, n / recipe.min_steps)))))
    return min(fits, recipe.base_batch), f"≥ {recipe.min_steps} steps an epoch; the recipe's {recipe.base_batch}"


def _lr(recipe: Recipe, batch: int) -> tuple[float, str]:
    if recipe.lr is not None:
        return recipe.lr, "--lr"
    if batch == recipe.base_batch:
        return recipe.base_lr, "the recipe's"
    ratio = batch / recipe.base_batch
    if recipe.optimizer == "sgd":
        return recipe.base_lr * ratio, f"{recipe.base_lr:g} × {batch}/{recipe.base_batch}, linear rule for SGD"
    return recipe.base_lr * math.sqrt(ratio), f"{recipe.base_lr:g} × √({batch}/{recipe.base_batch}), AdamW"


def _epochs(recipe: Recipe, n: int, size: float, weighs: str) -> tuple[int, str]:
    if recipe.epochs is not None:
        return recipe.epochs, "--epochs"
    wanted = recipe.samples_seen / size / n
    epochs = min(recipe.max_epochs, max(1, round(wanted)))
    why = (
        f"{recipe.samples_seen:,} samples seen"
        if size == 1
        else f"{recipe.samples_seen / size:,.0f} samples seen: {weighs}"
    )
    if wanted > recipe.max_epochs:
        why += f", at most {recipe.max_epochs} epochs"
    return epochs, why


def plan_recipe(recipe: Recipe, n: int, unit: str = "samples", size: tuple[float, str] = (1.0, "")) -> Plan:
    """The recipe with its epochs, batch and learning rate resolved for ``n`` training samples, each weighing
    ``size[0]`` of the recipe's samples (``size[1]`` says why, for the log)."""
    if n < 1:
        raise ValueError(f"the training split is empty (expected at least one {unit.rstrip('s')})")
    batch, batch_why = _batch(recipe, n)
    lr, lr_why = _lr(recipe, batch)
    epochs, epochs_why = _epochs(recipe, n, *size)
    steps = math.ceil(n / batch)
    note = (
        f"recipe: {n:,} training {unit} → batch {batch} ({batch_why}), lr {lr:.3g} ({lr_why}), "
        f"{epochs} epoch{'s' * (epochs != 1)} of {steps} step{'s' * (steps != 1)} ({epochs_why})"
    )
    return Plan(replace(recipe, epochs=epochs, batch_size=batch, lr=lr), note)
