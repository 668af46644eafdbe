"""``attnlab eval``: evaluate a run's checkpoint; metrics printed and written beside it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from ..engine.checkpoint import atomic_write_text
from ..engine.evaluation import evaluate_run
from ..engine.run_folder import load_run
from .base import Command, register_command
from .options import add_override_arguments, overrides_from_args


def add_arguments(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder (its best.safetensors) or a .safetensors file")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=0)
    add_override_arguments(p, argv)


def run(args: argparse.Namespace) -> int:
    overrides = overrides_from_args(args)
    run_ = load_run(args.checkpoint, overrides=overrides, device=args.device)
    result = evaluate_run(run_, workers=args.workers)
    out = run_.file.parent / "eval.json"
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    console = Console()
    console.print(f"{result['checkpoint']} (epoch {result['epoch']}), {result['run']}, test split:")
    console.print("  " + "   ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items()), highlight=False)
    for title, rows in run_.cli.eval_details(result["details"]):
        console.print(f"{title}:")
        table = Table(show_header=False)
        for name, value in rows.items():
            table.add_row(name, value)
        console.print(table)
    console.print(f"metrics and details written to {out}")
    return 0


COMMAND = register_command(
    Command(
        "eval",
        "evaluate a checkpoint on its task's test split (metrics and details)",
        add_arguments,
        run,
        task_flags="options",
    )
)
