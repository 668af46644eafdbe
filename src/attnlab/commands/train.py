"""``attnlab train``: train a model with attention on a data set into a run folder."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from ..engine.config import OPTIMIZERS, SCHEDULES, TrainConfig
from ..engine.trainer import RunOptions, fit
from .base import Command, register_command

DEFAULT = TrainConfig()


def add_config_arguments(p: argparse.ArgumentParser, *, with_attention: bool = True) -> None:
    """The recipe's arguments, shared by train and compare; defaults from ``TrainConfig``."""
    p.add_argument("--model", default=DEFAULT.model, help=f"a registered model (default {DEFAULT.model})")
    if with_attention:
        p.add_argument(
            "--attention",
            default=DEFAULT.attention,
            help=f"a registered attention or 'none' (default {DEFAULT.attention})",
        )
    p.add_argument(
        "--data", default=DEFAULT.data, help=f"mnist5k, cifar10, cifar100, imagefolder (default {DEFAULT.data})"
    )
    p.add_argument("--data-dir", default=None, help="folder of the data set (cifar*, imagefolder)")
    p.add_argument("--download", action="store_true", help="fetch a missing data set into --data-dir (CIFAR)")
    p.add_argument("--stem", choices=["imagenet", "cifar"], default=None, help="ResNet stem (default: the data's)")
    p.add_argument("--epochs", type=int, default=DEFAULT.epochs)
    p.add_argument("--batch-size", type=int, default=DEFAULT.batch_size, help="global batch, over all processes")
    p.add_argument("--lr", type=float, default=DEFAULT.lr, help="peak learning rate")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULT.optimizer)
    p.add_argument("--schedule", choices=SCHEDULES, default=DEFAULT.schedule)
    p.add_argument("--weight-decay", type=float, default=DEFAULT.weight_decay)
    p.add_argument("--label-smoothing", type=float, default=DEFAULT.label_smoothing)
    p.add_argument("--freeze-bn", action="store_true", help="batch-norm statistics frozen (eval mode)")
    p.add_argument("--train-limit", type=int, default=None, help="train on the first N images only (quick runs)")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--sync-bn", action="store_true", help="synchronized batch norm across processes")


def run_options(args: argparse.Namespace, out: Path, **extra) -> RunOptions:
    """The how-to-run arguments (add_run_arguments) as RunOptions."""
    return RunOptions(
        out,
        device=args.device,
        workers=args.workers,
        compile=args.compile,
        sync_bn=args.sync_bn,
        download=args.download,
        **extra,
    )


def config_from_args(args: argparse.Namespace, **override) -> TrainConfig:
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    return TrainConfig(**{**values, **override})


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--seed", type=int, default=DEFAULT.seed)
    p.add_argument("--out", default=None, help="run folder (default runs/<model>-<attention>-<data>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    add_run_arguments(p)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    out = Path(args.out or f"runs/{config.model}-{config.attention or 'none'}-{config.data}")
    opts = run_options(args, out, resume=args.resume, overwrite=args.overwrite)
    summary = fit(config, opts)
    if summary is not None:
        print(
            f"final val acc {summary['final_val_acc']:.4f}, best {summary['best_val_acc']:.4f}, "
            f"{summary['wall_seconds']:.0f} s; run folder {out}"
        )
    return 0


COMMAND = register_command(
    Command("train", "train a model with attention (default: ResNet18 + CBAM on mnist5k)", add_arguments, run)
)
