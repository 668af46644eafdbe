"""``attnlab eval``: evaluate a run's checkpoint; metrics printed and written beside it."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from ..engine.checkpoint import atomic_write_text
from ..engine.evaluation import checkpoint_file, evaluate_run
from .base import Command, register_command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder (its best.safetensors) or a .safetensors file")
    p.add_argument("--data", default=None, help="another registered data set (default: the run's)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    metrics = evaluate_run(
        args.checkpoint, data=args.data, data_dir=args.data_dir, device=args.device, workers=args.workers
    )
    out = checkpoint_file(args.checkpoint).parent / "eval.json"
    atomic_write_text(out, json.dumps(metrics, indent=1) + "\n")
    console = Console()
    console.print(f"{metrics['checkpoint']} (epoch {metrics['epoch']}) on {metrics['data']} test split:")
    console.print(
        f"  top-1 {metrics['val_acc']:.4f}   top-5 {metrics['val_top5']:.4f}   loss {metrics['val_loss']:.4f}"
    )
    table = Table("class", "accuracy", title="per class", title_justify="left")
    for name, acc in zip(metrics["classes"], metrics["per_class_acc"], strict=True):
        table.add_row(str(name), f"{acc:.4f}")
    console.print(table)
    console.print(f"metrics and confusion matrix written to {out}")
    return 0


COMMAND = register_command(
    Command("eval", "evaluate a checkpoint: top-1, top-5, loss, per-class accuracy, confusion", add_arguments, run)
)
