"""Training runs: ``fit`` composes build_data, build_model, build_optimizer, train_one_epoch and evaluate.

The run folder (``--out``) holds config.json (the resolved arguments), metrics.jsonl (one line per epoch),
last.safetensors (+ .json) every epoch, best.safetensors (+ .json) on improvement, summary.json at the end.
A run is reproducible: every epoch reseeds all RNGs from (seed, epoch) and shuffles by (seed, epoch),
so resuming from the last finished epoch, even after ``kill -9`` mid-epoch, ends with the same weights
and metrics as an uninterrupted run on CPU.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from ..data.registry import DATASETS, DataBundle, build_dataset
from ..data.seeded import EpochSeeded, epoch_seed
from ..layers.registry import attention_info
from ..models.registry import create_model, get_model_builder
from ..report.cost import count_flops, count_params
from ..report.progress import EpochProgress
from .checkpoint import (
    CheckpointError,
    atomic_write_text,
    load_checkpoint,
    model_state,
    restore_optimizer,
    save_checkpoint,
)
from .config import TrainConfig
from .distributed import DistContext, setup_distributed
from .loop import NonFiniteLoss, evaluate, train_one_epoch

__all__ = [
    "RunOptions",
    "fit",
    "build_data",
    "build_model",
    "build_loaders",
    "build_optimizer",
    "load_model_weights",
    "RunError",
]


class RunError(ValueError):
    """A run that cannot start or go on, with what to do about it."""


@dataclass
class RunOptions:
    """How to run (not what): these never change a run's result."""

    out: Path
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    workers: int = 0
    compile: bool = False
    sync_bn: bool = False
    progress: bool = True
    download: bool = False  # let torchvision fetch a missing data set (CIFAR)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_data(config: TrainConfig, download: bool = False) -> DataBundle:
    data = build_dataset(config.data, root=config.data_dir, download=download)
    if config.train_limit is not None and config.train_limit < len(data.train):
        data.train = Subset(data.train, range(config.train_limit))
    data.train = EpochSeeded(data.train, config.seed)  # augmentation by (seed, epoch, index)
    return data


def build_model(config: TrainConfig, data: DataBundle) -> nn.Module:
    torch.manual_seed(config.seed)
    return create_model(
        config.model,
        num_classes=data.num_classes,
        attention=config.attention,
        stem=config.stem or data.stem,
        in_chans=data.in_chans,
    )


def one_cycle(step: int, total: int, warmup: float = 0.25, start: float = 1 / 25, end: float = 1e-4) -> float:
    """The one-cycle learning-rate factor (Smith, 2018; torch's OneCycleLR defaults, any ``total``):
    linear from ``start`` to 1 over the first ``warmup`` of the steps, then cosine down to ``end``."""
    up = max(1, round(warmup * total))
    if step < up:
        return start + (1 - start) * step / up
    progress = min(1.0, (step - up) / max(1, total - up))
    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(config: TrainConfig, model: nn.Module, steps_per_epoch: int):
    decay, no_decay = [], []
    for p in model.parameters():  # no weight decay on biases and normalization scales
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    else:
        optimizer = torch.optim.AdamW(groups, lr=config.lr)
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: one_cycle(step, total))
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return optimizer, scheduler


def load_model_weights(model: nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """Strict load with a message naming the keys that differ (another model or attention)."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"checkpoint: {where} is from another model or attention: missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}, other shapes {shapes[:4]}"
        )
    model.load_state_dict(state)


def build_loaders(data: DataBundle, config: TrainConfig, ctx: DistContext, workers: int):
    """(train loader, test loader, train sampler) for this process's rank."""
    pin = ctx.device.type == "cuda"
    per_rank = max(1, config.batch_size // ctx.world_size)  # --batch-size is the global batch
    # One process or many, the same seeded permutation per epoch: rank r takes every world_size-th index, so
    # the ranks' batches b together are exactly the one-process batch b.
    sampler = DistributedSampler(data.train, ctx.world_size, ctx.rank, shuffle=True, seed=config.seed)
    train = DataLoader(data.train, per_rank, sampler=sampler, num_workers=workers, pin_memory=pin)
    test_part = Subset(data.test, range(ctx.rank, len(data.test), ctx.world_size))  # disjoint shards, no padding
    test = DataLoader(test_part, 256, num_workers=workers, pin_memory=pin)
    return train, test, sampler


def _prepare_run_dir(out: Path, config: TrainConfig, opts: RunOptions) -> None:
    """Refuse to mix runs: an --out holding another run needs --resume (same config) or --overwrite."""
    saved = out / "config.json"
    if opts.resume:
        if not (out / "last.safetensors").is_file():
            raise RunError(f"--resume: nothing to resume in {out} (no last.safetensors); start without --resume")
        before = TrainConfig.from_dict(json.loads(saved.read_text())).to_dict() if saved.is_file() else {}
        diff = {k: (before.get(k), v) for k, v in config.to_dict().items() if before.get(k) != v}
        if diff:
            raise RunError(
                f"--resume: the arguments differ from the run in {out}: "
                + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in diff.items())
            )
        return
    if out.exists() and any(out.iterdir()) and not opts.overwrite:
        raise RunError(f"--out: {out} already holds a run; pass --resume to continue it or --overwrite to replace it")
    if opts.overwrite and out.exists():
        for name in (
            "last.safetensors",
            "last.json",
            "best.safetensors",
            "best.json",
            "metrics.jsonl",
            "summary.json",
            "config.json",
        ):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved, json.dumps(config.to_dict(), indent=2) + "\n")


def _rng_state() -> dict:
    """Every RNG, JSON-able but torch's (a tensor). Epochs reseed from (seed, epoch); this is for inspection
    and for code that draws between epochs."""
    py = random.getstate()
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
    }


def _restore_rng(tensors: dict, doc: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    version, state, gauss = doc["rng"]["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = doc["rng"]["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def fit(config: TrainConfig, opts: RunOptions) -> dict | None:
    """Train ``config`` into ``opts.out``; returns the summary (None on ranks > 0, which write nothing)."""
    ctx = setup_distributed(opts.device)
    try:
        return _fit(config, opts, ctx)
    finally:
        ctx.close()


def check_names(config: TrainConfig) -> None:
    """Unknown model, attention or data names fail before anything is written, with suggestions."""
    get_model_builder(config.model)
    if config.attention is not None:
        attention_info(config.attention)
    DATASETS.get(config.data)


@dataclass
class _RunState:
    """Where a run stands after its finished epochs (what ``last.safetensors`` restores)."""

    epoch: int = 0
    history: list = field(default_factory=list)
    best: float = 0.0
    wall_seconds: float = 0.0  # of the finished epochs, over every process that worked on the run


def _resume(out: Path, model: nn.Module, optimizer, scheduler) -> _RunState:
    tensors, doc = load_checkpoint(out / "last.safetensors")
    load_model_weights(model, model_state(tensors), out / "last.safetensors")
    restore_optimizer(optimizer, tensors, doc)
    scheduler.load_state_dict(doc["scheduler"])
    _restore_rng(tensors, doc)
    return _RunState(doc["epoch"], doc["history"], doc["best_val_acc"], doc.get("wall_seconds", 0.0))


def _wrap(model: nn.Module, opts: RunOptions, ctx: DistContext) -> nn.Module:
    """The module the loop runs: DDP (with synchronized BN on request) and torch.compile around ``model``."""
    net = model
    if ctx.distributed:
        if opts.sync_bn:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    return torch.compile(net) if opts.compile else net


def _load_data(config: TrainConfig, opts: RunOptions, ctx: DistContext) -> DataBundle:
    """The data set; with --download rank 0 fetches it while the other ranks wait."""
    if opts.download and not ctx.is_main:
        ctx.barrier()
    data = build_data(config, download=opts.download and ctx.is_main)
    if opts.download and ctx.is_main:
        ctx.barrier()
    return data


def _save_epoch(out: Path, config, data, model, optimizer, scheduler, state: _RunState, val: dict, improved: bool):
    """last.* every epoch, best.* on improvement, metrics.jsonl: each written atomically."""
    meta = {
        "config": config.to_dict(),
        "epoch": state.epoch,
        "history": state.history,
        "best_val_acc": state.best,
        "wall_seconds": state.wall_seconds,
        "eval": {k: val[k] for k in ("per_class_acc", "confusion")},
        "classes": data.classes,
    }
    save_checkpoint(out / "last.safetensors", model, meta, optimizer=optimizer, scheduler=scheduler, rng=_rng_state())
    if improved:
        save_checkpoint(out / "best.safetensors", model, meta)
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in state.history))


def _summary(config: TrainConfig, data: DataBundle, model: nn.Module, state: _RunState, device) -> dict:
    history = state.history
    image = torch.zeros(1, data.in_chans, data.image_size, data.image_size, device=device)
    return {
        "final_val_acc": history[-1]["val_acc"] if history else None,
        "best_val_acc": state.best,
        "params": count_params(model),
        "gflops": count_flops(model, image) / 1e9,
        "wall_seconds": state.wall_seconds,
        "epochs": len(history),
        "train_images_per_s": float(np.mean([r["images_per_s"] for r in history])) if history else None,
        "model": config.model,
        "attention": config.attention,
        "data": config.data,
        "seed": config.seed,
    }


def _fit(config: TrainConfig, opts: RunOptions, ctx: DistContext) -> dict | None:
    out = Path(opts.out)
    check_names(config)
    if ctx.is_main:
        _prepare_run_dir(out, config, opts)
    ctx.barrier()
    wall_start = time.perf_counter()
    data = _load_data(config, opts, ctx)
    model = build_model(config, data).to(ctx.device, memory_format=torch.channels_last)
    train_loader, test_loader, sampler = build_loaders(data, config, ctx, opts.workers)
    optimizer, scheduler = build_optimizer(config, model, len(train_loader))
    state = _resume(out, model, optimizer, scheduler) if opts.resume else _RunState()
    wall_before = state.wall_seconds - wall_start  # + perf_counter(): the run's wall time so far
    net = _wrap(model, opts, ctx)

    interrupted, failure = False, None
    try:
        for epoch in range(state.epoch, config.epochs):
            seed_everything(epoch_seed(config.seed, epoch))
            sampler.set_epoch(epoch)  # the shuffle
            data.train.set_epoch(epoch)  # the augmentation
            lr = scheduler.get_last_lr()[0]
            show = opts.progress and ctx.is_main
            with EpochProgress(epoch + 1, config.epochs, len(train_loader.dataset), enabled=show) as progress:
                stats = train_one_epoch(
                    net,
                    train_loader,
                    optimizer,
                    scheduler,
                    ctx,
                    label_smoothing=config.label_smoothing,
                    freeze_bn=config.freeze_bn,
                    on_step=progress.update,
                )
            val = evaluate(net, test_loader, data.num_classes, ctx)
            record = {
                "epoch": epoch + 1,
                "train_loss": stats["train_loss"],
                "train_acc": stats["train_acc"],
                "val_loss": val["val_loss"],
                "val_acc": val["val_acc"],
                "val_top5": val["val_top5"],
                "lr": lr,
                "images_per_s": stats["images_per_s"],
                "seconds": stats["seconds"],
            }
            improved = val["val_acc"] > state.best
            state.epoch, state.best = epoch + 1, max(state.best, val["val_acc"])
            state.history.append(record)
            state.wall_seconds = wall_before + time.perf_counter()
            progress.line(record)
            if ctx.is_main:
                _save_epoch(out, config, data, model, optimizer, scheduler, state, val, improved)
            ctx.barrier()
    except KeyboardInterrupt:
        interrupted = True
    except NonFiniteLoss as e:
        failure = e

    if ctx.is_main and (interrupted or failure):
        what = "interrupted" if interrupted else f"stopped: {failure}"
        done = state.epoch
        keep = f"the last good checkpoint (epoch {done}) is {out / 'last.safetensors'}" if done else "no epoch finished"
        raise RunError(
            f"training {what}; {keep}. Resume with the same command and --resume"
            + ("" if interrupted else " after lowering --lr")
        )
    state.wall_seconds = wall_before + time.perf_counter()
    summary = _summary(config, data, model, state, ctx.device)
    if not ctx.is_main:
        return None
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    if state.history:
        from ..report.curves import plot_curves  # matplotlib only at the end

        plot_curves(
            state.history, out / "curves.png", f"{config.model} + {config.attention or 'none'} on {config.data}"
        )
    return summary
