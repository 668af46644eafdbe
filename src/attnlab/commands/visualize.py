"""``attnlab visualize``: what a trained model attends to, drawn by its task (maps, masks, frame weights)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.run_folder import load_run
from .base import Command, register_command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder (its best.safetensors) or a .safetensors file")
    p.add_argument("--out", required=True, help="the file to write (PNG)")
    p.add_argument("--images", type=int, default=6, help="how many test samples (the first N; default 6)")
    p.add_argument("--data", default=None, help="another registered data set (default: the run's)")
    p.add_argument("--data-dir", default=None)


def run(args: argparse.Namespace) -> int:
    if args.images < 1:
        raise ValueError(f"--images: expected a positive int, got {args.images}")
    run_ = load_run(args.checkpoint, data=args.data, data_dir=args.data_dir)
    path = run_.task.visualize(run_.model, run_.config.options, run_.meta, run_.data(), Path(args.out), args.images)
    print(f"wrote {path}")
    return 0


COMMAND = register_command(
    Command("visualize", "attention maps of a trained model (and Grad-CAM for images), as a PNG", add_arguments, run)
)
