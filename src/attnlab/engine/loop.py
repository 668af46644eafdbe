"""One training epoch and one evaluation, each a small function over a loader."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from .distributed import DistContext

__all__ = ["NonFiniteLoss", "train_one_epoch", "evaluate", "set_bn_eval"]


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


def set_bn_eval(model: nn.Module) -> None:
    """Batch-norm layers to eval mode: running statistics frozen, normalization by them."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """To the device, channels_last (the models are too: faster convolutions on CPU and GPU alike)."""
    return x.to(device, non_blocking=True, memory_format=torch.channels_last), y.to(device, non_blocking=True)


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ctx: DistContext,
    *,
    label_smoothing: float = 0.0,
    freeze_bn: bool = False,
    on_step: Callable[[int, float, float], None] | None = None,
) -> dict:
    """Train over ``loader`` once, stepping the scheduler every batch; metrics summed over all ranks."""
    model.train()
    if freeze_bn:
        set_bn_eval(model)
    totals = torch.zeros(3, dtype=torch.float64)  # loss·n, correct, n
    start = time.perf_counter()
    for x, y in loader:
        x, y = _to_device(x, y, ctx.device)
        with _autocast(ctx.device):
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"training loss is {loss.item()} at learning rate {scheduler.get_last_lr()[0]:.3g}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        n = y.shape[0]
        step = torch.tensor([loss.item() * n, (logits.argmax(1) == y).sum().item(), n], dtype=torch.float64)
        totals += step
        if on_step is not None:
            on_step(n, loss.item(), step[1].item() / n)
    seconds = time.perf_counter() - start
    totals = ctx.all_reduce_sum(totals)
    return {
        "train_loss": totals[0].item() / totals[2].item(),
        "train_acc": totals[1].item() / totals[2].item(),
        "images_per_s": totals[2].item() / seconds,
        "seconds": seconds,
    }


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, num_classes: int, ctx: DistContext) -> dict:
    """Loss, top-1, top-5, per-class accuracy and the confusion matrix (rows: true, columns: predicted)."""
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    totals = torch.zeros(3, dtype=torch.float64)  # loss·n, top-5 correct, n
    k = min(5, num_classes)
    for x, y in loader:
        x, y = _to_device(x, y, ctx.device)
        with _autocast(ctx.device):
            logits = model(x)
        logits = logits.float()
        loss = F.cross_entropy(logits, y, reduction="sum")
        top5 = (logits.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum()
        totals += torch.tensor([loss.item(), top5.item(), y.shape[0]], dtype=torch.float64)
        confusion += (
            torch.bincount((y * num_classes + logits.argmax(1)).cpu(), minlength=num_classes**2)
            .view(num_classes, num_classes)
            .double()
        )
    totals, confusion = ctx.all_reduce_sum(totals), ctx.all_reduce_sum(confusion)
    n = totals[2].item()
    per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
    return {
        "val_loss": totals[0].item() / n,
        "val_acc": confusion.diag().sum().item() / n,
        "val_top5": totals[1].item() / n,
        "per_class_acc": per_class.tolist(),
        "confusion": confusion.long().tolist(),
    }
