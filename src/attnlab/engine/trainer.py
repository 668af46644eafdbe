"""Training runs, for any task: ``fit`` composes build_data, build_model, build_optimizer, train_one_epoch and
evaluate; the task says what the data, model, loss and metrics are.

The run folder (``--out``, see ``run_folder``) holds config.json, metrics.jsonl, last/best checkpoints,
summary.json and curves.png. A run is reproducible: every epoch reseeds all RNGs from (seed, epoch) and
shuffles by (seed, epoch), so resuming from the last finished epoch, even after ``kill -9`` mid-epoch, ends
with the same weights and metrics as an uninterrupted run on CPU.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from ..data.seeded import EpochSeeded, epoch_seed
from ..measure.cost import count_flops, count_params
from ..report.tables import rate_key
from ..tasks import Task, TaskData
from .averaging import WeightAverage
from .checkpoint import atomic_write_text, load_checkpoint, model_state, restore_optimizer, save_checkpoint
from .config import Recipe, TrainConfig
from .distributed import DistContext, setup_distributed
from .loop import NonFiniteLoss, evaluate, heldout_name, result_line, train_one_epoch
from .paired import paired_tests, paired_words, test_predictions
from .plan import Plan, plan_recipe
from .precision import resolve_precision
from .progress import EpochProgress
from .run_folder import (
    BEST,
    CURVES,
    LAST,
    RUNS,
    SUMMARY,
    RunError,
    load_model_weights,
    prepare_run_dir,
)
from .samplers import LengthGroupedSampler
from .saving import CHECKPOINT_EVERY, CheckpointWriter

__all__ = [
    "RunOptions",
    "fit",
    "build_data",
    "build_model",
    "build_loaders",
    "Loaders",
    "build_optimizer",
    "RunError",
    "seed_everything",
]


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
    baselines: bool = True  # fit the task's classical baselines (compare fits them for its first run only)
    checkpoint_every: float = CHECKPOINT_EVERY  # seconds between writes of last.* (engine.saving; 0: every epoch)

    def __post_init__(self) -> None:
        if not self.checkpoint_every >= 0:  # NaN too
            raise ValueError(f"--checkpoint-every: expected seconds >= 0, got {self.checkpoint_every:g}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_data(config: TrainConfig, task: Task, download: bool = False) -> TaskData:
    """The task's data (its meta then bound to ``task``) with a validation split (the data's own, else carved
    from the training split), the training split cut to ``train_limit`` and augmented by (seed, epoch, index)."""
    data = task.build_data(download=download)
    task.meta = data.meta
    if data.val is None:
        data = task.split_validation(data, config.recipe.val_fraction)
    limit, n = config.recipe.train_limit, len(data.train)
    if limit is not None and limit < n:
        data.train = Subset(data.train, range(limit))
        data.lengths = None if data.lengths is None else list(data.lengths)[:limit]
        # the baselines fit on the samples the network trains on (``TaskData.training_samples``)
        split = data.split or {"train": list(range(n)), "val": []}
        data.split = {**split, "train": split["train"][:limit]}
    data.train = EpochSeeded(data.train, config.recipe.seed)
    return data


def build_model(config: TrainConfig, task: Task) -> nn.Module:
    torch.manual_seed(config.recipe.seed)
    return task.build_model()


def one_cycle(step: int, total: int, warmup: float = 0.25, start: float = 1 / 25, end: float = 1e-4) -> float:
    """The one-cycle learning-rate factor (Smith, 2018), any ``total``: linear from ``start`` to 1 over the first
    ``warmup`` of the steps, then cosine down to ``end``; torch's ``SequentialLR(LinearLR, CosineAnnealingLR)``
    (tested). Not ``OneCycleLR``'s defaults, which warm up for 30 % along a cosine and end at 4e-6."""
    up = max(1, round(warmup * total))
    if step < up:
        return start + (1 - start) * step / up
    progress = min(1.0, (step - up) / max(1, total - up))
    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(recipe: Recipe, task: Task, model: nn.Module, steps_per_epoch: int):
    groups: dict[tuple[bool, float], list] = {}  # (decays, lr scale) -> parameters; frozen ones left out
    for name, p in model.named_parameters():  # no weight decay on biases and normalization scales
        if p.requires_grad:
            groups.setdefault((p.ndim > 1, task.lr_scale(name)), []).append(p)
    groups = [
        {"params": ps, "weight_decay": recipe.weight_decay if decays else 0.0, "lr": recipe.lr * scale}
        for (decays, scale), ps in sorted(groups.items(), key=lambda kv: (not kv[0][0], -kv[0][1]))
    ]
    if recipe.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=recipe.lr, momentum=0.9, nesterov=True)
    else:  # torch's fused kernel: the same update in one pass (the text task's 65,536-row subword table: 41 -> 7 ms)
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for g in groups for p in g["params"])
        optimizer = torch.optim.AdamW(groups, lr=recipe.lr, fused=fused or None)
    total = max(1, recipe.epochs * steps_per_epoch)
    if recipe.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: one_cycle(step, total))
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return optimizer, scheduler


@dataclass
class Loaders:
    """This process's loaders: training (with its sampler), validation (every epoch) and test (once)."""

    train: DataLoader
    val: DataLoader
    test: DataLoader
    sampler: DistributedSampler | LengthGroupedSampler


def build_loaders(data: TaskData, recipe: Recipe, task: Task, ctx: DistContext, workers: int) -> Loaders:
    """The loaders of this process's rank; ``recipe`` planned (its batch size resolved: ``plan_recipe``)."""
    pin = ctx.device.type == "cuda"
    per_rank = max(1, recipe.batch_size // ctx.world_size)  # --batch-size is the global batch
    # One process or many, the same seeded permutation per epoch: rank r takes every world_size-th index, so
    # the ranks' batches b together are exactly the one-process batch b.
    if data.lengths is not None:  # variable lengths: batches of similar lengths, the same split across ranks
        sampler = LengthGroupedSampler(
            data.lengths, recipe.batch_size, world_size=ctx.world_size, rank=ctx.rank, seed=recipe.seed
        )
    else:
        sampler = DistributedSampler(data.train, ctx.world_size, ctx.rank, shuffle=True, seed=recipe.seed)
    common = {"num_workers": workers, "pin_memory": pin, "collate_fn": data.collate_fn}

    def shard(split):  # disjoint shards, no padding: every sample is evaluated once
        return DataLoader(Subset(split, range(ctx.rank, len(split), ctx.world_size)), task.eval_batch_size, **common)

    train = DataLoader(data.train, per_rank, sampler=sampler, **common)
    return Loaders(train, shard(data.val), shard(data.test), sampler)


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
    """Train ``config`` into ``opts.out``; returns the summary (None on ranks > 0, which write nothing). Runs it
    needs (``Task.prerequisites``) that are missing are trained first, into their folders."""
    for need in config.new_task().prerequisites():
        if not (need.folder / SUMMARY).is_file():
            resume = (need.folder / LAST).is_file()
            if opts.progress and int(os.environ.get("RANK", "0")) == 0:
                print(f"{need.why}: {'resuming' if resume else 'training'} it first, into {need.folder}", flush=True)
            values = {**need.values, **({"val_fraction": config.recipe.val_fraction} if need.same_validation else {})}
            made = fit(TrainConfig.create(need.task, **values), replace(opts, out=need.folder, resume=resume))
            if made is not None and opts.progress:
                print(f"made: {result_line(made, need.folder)}", flush=True)
    ctx = setup_distributed(opts.device)
    try:
        return _fit(config, opts, ctx)
    finally:
        ctx.close()


def _improves(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value > best if mode == "max" else value < best)


def _better(record: dict, best: dict | None, monitor: str, mode: str) -> bool:
    """Whether an epoch's validation record beats the best so far: a better monitored metric, or an equal one
    with a lower validation loss (a small validation split ties often, and the later, calmer epoch of a
    decaying schedule is the one to keep)."""
    if best is None or _improves(record[monitor], best[monitor], mode):
        return True
    tie = record[monitor] == best[monitor] and monitor != "val_loss" and "val_loss" in record
    return tie and record["val_loss"] < best["val_loss"]


@dataclass
class _RunState:
    """Where a run stands after its finished epochs (what ``last.safetensors`` restores)."""

    epoch: int = 0
    history: list = field(default_factory=list)
    best_epoch: int = 0  # the epoch of the best validation record (0: none yet)
    wall_seconds: float = 0.0  # of the finished epochs, over every process that worked on the run

    @property
    def best(self) -> dict | None:
        """The best epoch's record (its validation metrics), None before the first epoch."""
        return self.history[self.best_epoch - 1] if self.best_epoch else None

    def stale(self, patience: int) -> bool:
        """Whether ``patience`` epochs have passed without a better validation metric (0: never stop)."""
        return patience > 0 and self.epoch - self.best_epoch >= patience


def _best_epoch(history: list, monitor: str, mode: str) -> int:
    best = None
    for record in history:
        if _better(record, best, monitor, mode):
            best = record
    return 0 if best is None else best["epoch"]


def _resume(out: Path, model: nn.Module, optimizer, scheduler, monitor, average: WeightAverage | None) -> _RunState:
    tensors, doc = load_checkpoint(out / LAST)
    load_model_weights(model, model_state(tensors), out / LAST)
    if average is not None:
        average.load(tensors, str(out / LAST))
    restore_optimizer(optimizer, tensors, doc)
    scheduler.load_state_dict(doc["scheduler"])
    _restore_rng(tensors, doc)
    best = _best_epoch(doc["history"], *monitor)  # the loop's own rule, over the epochs it finished
    return _RunState(doc["epoch"], doc["history"], best, doc.get("wall_seconds", 0.0))


def _wrap(model: nn.Module, opts: RunOptions, ctx: DistContext) -> nn.Module:
    """The module the loop runs: DDP (with synchronized BN on request) and torch.compile around ``model``."""
    net = model
    if ctx.distributed:
        if opts.sync_bn:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    return torch.compile(net) if opts.compile else net


def _load_data(config: TrainConfig, task: Task, opts: RunOptions, ctx: DistContext) -> TaskData:
    """The data set; with --download rank 0 fetches it while the other ranks wait."""
    if opts.download and not ctx.is_main:
        ctx.barrier()
    data = build_data(config, task, download=opts.download and ctx.is_main)
    if opts.download and ctx.is_main:
        ctx.barrier()
    return data


def _checkpoint_meta(config: TrainConfig, plan: Plan, data: TaskData, state: _RunState, details: dict, monitor: str):
    """What last.* and best.* keep besides tensors; ``monitor``: the run's task's (a task's monitor may depend on
    its options, so the task object's, not its class's)."""
    return {
        "config": config.to_dict(),
        "plan": plan.to_dict(),
        "epoch": state.epoch,
        "history": state.history,
        "best": {"metric": monitor, "value": None if state.best is None else state.best[monitor]},
        "best_epoch": state.best_epoch,
        "wall_seconds": state.wall_seconds,
        "eval": details,
        "data_meta": data.meta,
    }


def _summary(
    config, plan: Plan, task: Task, data: TaskData, model, state: _RunState, test: dict, opts, device, scored
) -> dict:
    history = state.history
    monitor, rate = task.monitor[0], rate_key(task.unit)
    example = [x.to(device) for x in task.example_input()]
    best = state.best or {}
    summary = {
        **config.to_dict(),  # what was asked (None: planned); the keys below say what was done
        heldout_name(monitor): test.get(heldout_name(monitor)),
        f"best_{monitor}": best.get(monitor),
        "monitor": monitor,
        "monitor_mode": task.monitor[1],
        "best_epoch": state.best_epoch,
        "val_metrics": {k: v for k, v in best.items() if k.startswith("val_")},
        "test_metrics": test,
        "params": count_params(model),
        "gflops": count_flops(model, *example) / 1e9,
        "wall_seconds": state.wall_seconds,
        "epochs": len(history),
        "stopped_early": len(history) < plan.recipe.epochs,
        "plan": plan.to_dict(),
        "splits": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
        f"train_{rate}": float(np.mean([r[rate] for r in history])) if history else None,
        "baselines": task.baselines(data) if opts.baselines else {},
        "unit": task.unit,
        "task": config.task,
    }
    if "fitted" in task.meta:  # what the task chose on validation after training (fit_after_training)
        summary["fitted"] = task.meta["fitted"]
    if task.classifies:  # sample by sample, for paired tests here and in compare
        # one process: the predictions the test score was computed from; several: each shard scored only its own
        predicted, targets = scored or test_predictions(model, data, task, device, plan.precision)
        summary.update(test_predictions=predicted, test_targets=targets)
        summary["paired"] = paired_tests(predicted, targets, summary["baselines"])
    return summary


def _say(ctx: DistContext, opts: RunOptions, lines: list[str]) -> None:
    if ctx.is_main and opts.progress:
        for line in lines:
            print(line, flush=True)


def _load_best(out: Path, model: nn.Module, ctx: DistContext) -> dict | None:
    """The best checkpoint's weights into ``model``; its document (None when no epoch improved on nothing)."""
    ctx.barrier()  # best.* is written by rank 0
    if not (out / BEST).is_file():
        return None
    tensors, doc = load_checkpoint(out / BEST)
    load_model_weights(model, model_state(tensors), out / BEST)
    return doc


def _test(out: Path, doc: dict | None, model: nn.Module, net: nn.Module, loaders: Loaders, ctx, task: Task, precision):
    """(the test split's figures, each sample's (predicted, true) class where one process scored them all, else
    None): the test split scored once, with the best checkpoint's weights (``_load_best``); best.* then keeps
    the test figures and details (``attnlab eval`` prints them) and the task's meta with what it fitted after
    training."""
    scored = ([], []) if task.classifies and ctx.world_size == 1 else None
    test, details = evaluate(net, loaders.test, ctx, task, split="test", precision=precision, predictions=scored)
    if ctx.is_main and doc is not None:
        doc.pop("format")
        doc.update(test=test, eval=details, val_eval=doc.get("eval"), data_meta=task.meta)
        save_checkpoint(out / BEST, model, doc)
    return test, scored


def _fit(config: TrainConfig, opts: RunOptions, ctx: DistContext) -> dict | None:
    out = Path(opts.out)
    task = config.new_task(runs=RUNS)
    monitor, mode = task.monitor
    task.check_names()  # unknown names (model, attention, data …) fail before anything is written
    if ctx.is_main:
        prepare_run_dir(out, config, resume=opts.resume, overwrite=opts.overwrite)
    ctx.barrier()
    wall_start = time.perf_counter()
    data = _load_data(config, task, opts, ctx)
    plan = plan_recipe(config.recipe, len(data.train), task.unit, task.sample_size())
    recipe = plan.recipe
    precision, why = resolve_precision(recipe.precision, ctx.device, task.cpu_bf16)
    plan = replace(plan, note=f"{plan.note}; {precision} ({why})", precision=precision)
    _say(ctx, opts, [*data.meta.get("notes", []), plan.note])
    model = build_model(config, task)
    if not opts.resume:
        _say(ctx, opts, task.initialize(model))
    model = task.prepare_model(model, ctx.device)
    loaders = build_loaders(data, recipe, task, ctx, opts.workers)
    optimizer, scheduler = build_optimizer(recipe, task, model, len(loaders.train))
    average = None if not recipe.ema else WeightAverage(model, recipe.ema)
    if average is not None:
        _say(ctx, opts, [f"validation and test: the moving average of the weights (--ema {recipe.ema})"])
    state = _resume(out, model, optimizer, scheduler, task.monitor, average) if opts.resume else _RunState()
    wall_before = state.wall_seconds - wall_start  # + perf_counter(): the run's wall time so far
    net = _wrap(model, opts, ctx)
    judged = net if average is None else average.module  # what validation scores and best.* keeps
    writer = CheckpointWriter(out, opts.checkpoint_every, state.epoch, _rng_state)

    interrupted, failure = False, None
    try:
        for epoch in range(state.epoch, recipe.epochs):
            if state.stale(recipe.early_stop):
                break
            seed_everything(epoch_seed(recipe.seed, epoch))
            loaders.sampler.set_epoch(epoch)  # the shuffle
            data.train.set_epoch(epoch)  # the augmentation
            lr = scheduler.get_last_lr()[0]
            show = opts.progress and ctx.is_main
            total = len(loaders.train.dataset)
            with EpochProgress(epoch + 1, recipe.epochs, total, task.unit, enabled=show) as progress:
                stats = train_one_epoch(
                    net,
                    loaders.train,
                    optimizer,
                    scheduler,
                    ctx,
                    task,
                    freeze_bn=recipe.freeze_bn,
                    on_step=progress.update,
                    precision=precision,
                    after_step=None if average is None else lambda: average.update(model),
                )
            val, details = evaluate(judged, loaders.val, ctx, task, precision=precision)
            rate = rate_key(task.unit)
            train_metrics = {k: v for k, v in stats.items() if k.startswith("train_")}
            record = {"epoch": epoch + 1, **train_metrics, **val, "lr": lr, rate: stats[rate]}
            record["seconds"] = stats["seconds"]
            if monitor not in record:
                raise RunError(f"task {task.name!r} monitors {monitor!r}, which its metrics do not report")
            improved = _better(record, state.best, monitor, mode)
            state.epoch = epoch + 1
            state.history.append(record)
            if improved:
                state.best_epoch = epoch + 1
            state.wall_seconds = wall_before + time.perf_counter()
            progress.line(record)
            meta = _checkpoint_meta(config, plan, data, state, details, monitor)
            if ctx.is_main:  # last.* with the weight average, if any; best.*: the weights validation saw
                final = state.epoch == recipe.epochs or state.stale(recipe.early_stop)
                extra = None if average is None else average.tensors()
                writer.epoch_done(
                    meta,
                    model,
                    model if average is None else average.module,
                    improved=improved,
                    final=final,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    extra=extra,
                )
            ctx.barrier()
    except KeyboardInterrupt:
        interrupted = True
    except NonFiniteLoss as e:
        failure = e

    if ctx.is_main and (interrupted or failure):
        what = "interrupted" if interrupted else f"stopped: {failure}"
        done = writer.saved_epoch
        keep = f"the last good checkpoint (epoch {done}) is {out / LAST}" if done else "no epoch was saved"
        raise RunError(
            f"training {what}; {keep}. Resume with the same command and --resume"
            + ("" if interrupted else " after lowering --lr")
        )
    if state.stale(recipe.early_stop) and state.epoch < recipe.epochs:
        _say(
            ctx,
            opts,
            [f"early stop: no better {monitor} in {recipe.early_stop} epochs (best: epoch {state.best_epoch})"],
        )
    doc = _load_best(out, model, ctx)
    fitted = task.fit_after_training(model, data, ctx.device)  # on validation, before the test is scored
    _say(ctx, opts, fitted.pop("lines", []))
    task.meta.update(fitted)
    test, scored = _test(out, doc, model, net, loaders, ctx, task, precision)
    state.wall_seconds = wall_before + time.perf_counter()
    if not ctx.is_main:
        return None
    # rank 0 alone: the baselines fitted once
    summary = _summary(config, plan, task, data, model, state, test, opts, ctx.device, scored)
    _say(ctx, opts, paired_words(summary.get("paired", {}), task.unit))
    atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    if state.history:
        from ..report.curves import plot_curves  # matplotlib only at the end

        plot_curves(state.history, out / CURVES, task.title())
    return summary
