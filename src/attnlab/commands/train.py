"""``attnlab train``: train a task's model into a run folder (default: ResNet18 + CBAM on mnist5k)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..engine.loop import result_line
from ..engine.saving import CHECKPOINT_EVERY
from ..engine.trainer import RunOptions, fit
from .base import Command, register_command
from .config_file import to_yaml
from .options import add_config_arguments, chosen_task, config_from_args


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """How to run: never changes the result."""
    group = p.add_argument_group("how to run")
    group.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    group.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0)")
    group.add_argument("--compile", action="store_true", help="torch.compile the model")
    group.add_argument("--sync-bn", action="store_true", help="synchronized batch norm across processes")
    group.add_argument("--download", action="store_true", help="fetch a missing data set into --data-dir (CIFAR)")
    group.add_argument(
        "--checkpoint-every",
        type=float,
        default=CHECKPOINT_EVERY,
        metavar="SECONDS",
        help=f"write last.* (what --resume continues from) at most this often, and after the first and the final "
        f"epoch; 0: every epoch (default {CHECKPOINT_EVERY:g})",
    )


def run_options(args: argparse.Namespace, out: Path, **extra) -> RunOptions:
    """The how-to-run arguments (add_run_arguments) as RunOptions."""
    if args.workers < 0:
        raise ValueError(f"--workers: expected an int >= 0, got {args.workers}")
    return RunOptions(
        out,
        device=args.device,
        workers=args.workers,
        compile=args.compile,
        sync_bn=args.sync_bn,
        download=args.download,
        checkpoint_every=args.checkpoint_every,
        **extra,
    )


def add_arguments(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    add_config_arguments(p, argv)
    p.set_defaults(_task_name=chosen_task(argv))
    p.add_argument("--out", default=None, help="run folder (default runs/<model>-<attention>-<data> or the task's)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    add_run_arguments(p)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.print_config:
        print(to_yaml(config.to_dict()), end="")
        return 0
    out = Path(args.out) if args.out else config.new_task().default_out()
    summary = fit(config, run_options(args, out, resume=args.resume, overwrite=args.overwrite))
    if summary is not None:
        print(result_line(summary, out))
    return 0


COMMAND = register_command(
    Command(
        "train",
        "train a model with attention (default: ResNet18 + CBAM on mnist5k)",
        add_arguments,
        run,
        task_flags="options",
    )
)
