"""One training epoch and one evaluation, each a small function over a loader, for any task."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..report.tables import rate_key
from ..tasks import Task
from .distributed import DistContext
from .precision import autocast

__all__ = ["NonFiniteLoss", "train_one_epoch", "evaluate", "set_bn_eval"]


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


def set_bn_eval(model: nn.Module) -> None:
    """Batch-norm layers to eval mode: running statistics frozen, normalization by them."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ctx: DistContext,
    task: Task,
    *,
    freeze_bn: bool = False,
    on_step: Callable[[int, float], None] | None = None,
    precision: str | None = None,
    after_step: Callable[[], None] | None = None,
) -> dict:
    """Train over ``loader`` once, stepping the scheduler every batch.

    Returns ``train_loss``, the task's training metrics as ``train_<name>``, samples per second and seconds;
    every sum is reduced over all ranks in one all-reduce. ``precision``: ``engine.precision.autocast``'s;
    ``after_step`` runs after every optimizer step (a weight average's update)."""
    model.train()
    if freeze_bn:
        set_bn_eval(model)
    metric = task.metric(training=True)
    loss_sum, count = 0.0, 0
    start = time.perf_counter()
    for batch in loader:
        inputs, target = task.to_device(batch, ctx.device)
        with autocast(ctx.device, precision):
            output = task.forward_train(model, inputs)
            loss = task.loss(output, target)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"training loss is {loss.item()} at learning rate {scheduler.get_last_lr()[0]:.3g}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if after_step is not None:
            after_step()
        n = inputs[0].shape[0]
        loss_sum += loss.item() * n
        count += n
        metric.update(output, target, loss)
        if on_step is not None:
            on_step(n, loss.item())
    seconds = time.perf_counter() - start
    totals = ctx.all_reduce_sum(torch.cat([torch.tensor([loss_sum, count], dtype=torch.float64), metric.sums]))
    metric.sums = totals[2:]
    scalars, _ = metric.compute()
    return {
        "train_loss": totals[0].item() / totals[1].item(),
        **{f"train_{k}": v for k, v in scalars.items()},
        rate_key(task.unit): totals[1].item() / seconds,
        "seconds": seconds,
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    ctx: DistContext,
    task: Task,
    split: str = "val",
    precision: str | None = None,
    predictions: tuple[list, list] | None = None,
) -> tuple[dict[str, float], dict]:
    """(``<split>_<name>`` scalars, details such as a confusion matrix) of the task's metric over ``loader``:
    ``val_*`` on the validation split, ``test_*`` on the test split. ``predictions``: two lists that get each
    sample's predicted class and true class, in the loader's order (as ``paired.test_predictions`` gives them)."""
    model.eval()
    metric = task.metric(training=False)
    for batch in loader:
        inputs, target = task.to_device(batch, ctx.device)
        with autocast(ctx.device, precision):
            output = task.forward_eval(model, inputs)
            loss = task.eval_loss(output, target)
        metric.update(output, target, loss)
        if predictions is not None:
            predictions[0].extend(task.predicted_classes(output).tolist())
            predictions[1].extend(target.long().tolist())
    metric.sums = ctx.all_reduce_sum(metric.sums)
    scalars, details = metric.compute()
    return {f"{split}_{k}": v for k, v in scalars.items()}, details


def heldout_name(monitor: str) -> str:
    """The test split's name of a validation metric: ``val_acc`` -> ``test_acc``."""
    return "test_" + monitor.removeprefix("val_")


def result_line(summary: dict, out) -> str:
    """A finished run in one line: its test figure (scored once), its best validation figure and its time."""
    monitor = summary["monitor"]
    test = heldout_name(monitor)
    return (
        f"{test} {summary[test]:.4f} (the test split, scored once), best {monitor} "
        f"{summary[f'best_{monitor}']:.4f} (epoch {summary['best_epoch']} of {summary['epochs']}), "
        f"{summary['wall_seconds']:.0f} s; run folder {out}"
    )
