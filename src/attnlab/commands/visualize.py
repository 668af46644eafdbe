"""``attnlab visualize``: what a trained model attends to, drawn by its task (maps, masks, frame weights)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..engine.evaluation import evaluate_run
from ..engine.run_folder import load_run
from .base import Command, register_command
from .options import add_override_arguments, overrides_from_args


def add_arguments(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder (its best.safetensors) or a .safetensors file")
    p.add_argument("--out", required=True, help="the file to write (PNG; HTML for text runs)")
    p.add_argument(
        "--count",
        "--images",
        type=int,
        default=6,
        help="how many test samples: images, texts, clips (the first N; default 6)",
    )
    add_override_arguments(p, argv)


def run(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise ValueError(f"--count: expected a positive int, got {args.count}")
    overrides = overrides_from_args(args)
    run_ = load_run(args.checkpoint, overrides=overrides)

    def details() -> dict:  # the checkpoint's own evaluation, unless the data is another than the run's
        return run_.doc["eval"] if "eval" in run_.doc and not overrides else evaluate_run(run_)["details"]

    path = run_.cli.visualize(run_.model, run_.data(), Path(args.out), args.count, details)
    print(f"wrote {path}")
    return 0


COMMAND = register_command(
    Command(
        "visualize",
        "attention maps of a trained model (and Grad-CAM for images), as a PNG",
        add_arguments,
        run,
        task_flags="options",
    )
)
