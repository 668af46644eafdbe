"""``attnlab compare``: the same recipe and seeds for every attention module, one table and one plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.checkpoint import atomic_write_text
from ..engine.compare import aggregate, results_csv, results_markdown, run_comparison
from ..layers.registry import attention_info
from .base import Command, register_command
from .train import add_config_arguments, add_run_arguments, config_from_args, run_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--attention",
        default="none,se,eca,cbam",
        help="comma-separated attention names, 'none' for the plain model (default none,se,eca,cbam)",
    )
    add_config_arguments(p, with_attention=False)
    p.add_argument("--seeds", type=int, default=3, help="runs per module, seeds 0..N-1 (default 3)")
    p.add_argument("--out", default="runs/compare", help="folder of the runs and results (default runs/compare)")
    add_run_arguments(p)


def run(args: argparse.Namespace) -> int:
    attentions = [None if a in ("none", "") else a for a in args.attention.split(",")]
    for a in attentions:
        if a is not None:
            attention_info(a)  # unknown names fail now, with suggestions, not after hours of training
    if args.seeds < 1:
        raise ValueError(f"--seeds: expected a positive int, got {args.seeds}")
    base = config_from_args(args, attention=None)
    out = Path(args.out)
    opts = run_options(args, out)
    seeds = list(range(args.seeds))
    rows = aggregate(run_comparison(base, attentions, seeds, out, opts), out, seeds)
    atomic_write_text(out / "results.csv", results_csv(rows))
    markdown = results_markdown(rows, base, seeds)
    atomic_write_text(out / "results.md", markdown)
    from ..report.compare_plot import plot_comparison

    plot_comparison(rows, out / "compare.png", f"{base.model} on {base.data}, {len(seeds)} seeds")
    print(markdown)
    print(f"results in {out}/results.md, results.csv, compare.png")
    return 0


COMMAND = register_command(
    Command("compare", "train every attention with one recipe and seeds; table and plot", add_arguments, run)
)
