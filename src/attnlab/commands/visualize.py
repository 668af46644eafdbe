"""``attnlab visualize``: where a trained model's attention looks, next to Grad-CAM."""

from __future__ import annotations

import argparse

import torch

from ..engine.evaluation import load_run_model
from .base import Command, register_command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder (its best.safetensors) or a .safetensors file")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--images", type=int, default=6, help="how many test images (the first N; default 6)")
    p.add_argument("--data", default=None, help="another registered data set (default: the run's)")
    p.add_argument("--data-dir", default=None)


def run(args: argparse.Namespace) -> int:
    if args.images < 1:
        raise ValueError(f"--images: expected a positive int, got {args.images}")
    from ..report.visualize import plot_attention_grid

    model, bundle, config, doc = load_run_model(args.checkpoint, data=args.data, data_dir=args.data_dir)
    items = [bundle.test[i] for i in range(min(args.images, len(bundle.test)))]
    x = torch.stack([x for x, _ in items])
    labels = torch.tensor([y for _, y in items])
    title = f"{config.model} + {config.attention or 'no attention'} on {config.data} (epoch {doc['epoch']})"
    path = plot_attention_grid(model, x, labels, bundle.classes, bundle.mean, bundle.std, args.out, title)
    print(f"wrote {path}")
    return 0


COMMAND = register_command(
    Command("visualize", "attention maps and Grad-CAM of a trained model, as a PNG grid", add_arguments, run)
)
