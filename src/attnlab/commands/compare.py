"""``attnlab compare``: the same recipe and seeds for every value of the varied fields; one table and one plot.

attnlab compare --vary attention=none,se,cbam                 (classification's default: none,se,eca,cbam)
attnlab compare --attention none,se,cbam                      (the same: a comma list of one option varies it)
attnlab compare --task segment --vary model=unet,attention_unet --seeds 3
"""

from __future__ import annotations

import argparse
import typing
from pathlib import Path

from ..engine.checkpoint import atomic_write_text
from ..engine.compare import aggregate, results_csv, results_markdown, run_comparison, variants
from ..engine.config import RECIPE_FIELDS, Recipe
from ..tasks import get_task
from .base import Command, register_command
from .options import config_from_args, option_fields, parse_value
from .train import add_config_arguments, add_run_arguments, run_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="FIELD=A,B,…",
        help="a field and its values, e.g. attention=none,se,cbam or model=unet,attention_unet (repeatable: "
        "every combination); default: the task's own comparison",
    )
    add_config_arguments(p)
    p.add_argument("--seeds", type=int, default=3, help="runs per row, seeds 0..N-1 (default 3)")
    p.add_argument("--out", default="runs/compare", help="folder of the runs and results (default runs/compare)")
    p.add_argument("--no-latency", action="store_true", help="skip the batch-1 latency column")
    add_run_arguments(p)


def _hint(task: str, name: str):
    """The type of a recipe field or of the task's option ``name``; unknown names are refused."""
    if name in RECIPE_FIELDS:
        return typing.get_type_hints(Recipe)[name]
    Options = get_task(task).Options
    hints = typing.get_type_hints(Options)
    if name not in hints:
        fields = sorted([*RECIPE_FIELDS, *hints])
        raise ValueError(f"--vary: task {task!r} has no field {name!r}; its fields are {fields}")
    return hints[name]


def parse_vary(args: argparse.Namespace) -> dict[str, list]:
    """``--vary`` items, plus any option given as a comma list (``--attention none,se``), as field -> values."""
    vary: dict[str, list] = {}
    texts = list(args.vary)
    for name in option_fields():
        value = getattr(args, name, None)
        if isinstance(value, str) and "," in value:
            texts.append(f"{name}={value}")
            delattr(args, name)  # varied, not a base option
    for text in texts:
        name, sep, values = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values:
            raise ValueError(f"--vary: expected FIELD=A,B,…, got {text!r}")
        if name in vary:
            raise ValueError(f"--vary: {name!r} given twice")
        hint = _hint(args.task, name)
        vary[name] = [parse_value(hint, v.strip(), f"--vary {name}") for v in values.split(",")]
    if not vary:
        vary = {
            k: [parse_value(_hint(args.task, k), v, "--vary") for v in vs]
            for k, vs in get_task(args.task).default_vary.items()
        }
    return vary


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise ValueError(f"--seeds: expected a positive int, got {args.seeds}")
    vary = parse_vary(args)
    base = config_from_args(args)
    rows = variants(vary)
    for variant in rows:  # unknown names fail now, with suggestions, not after hours of training
        config = base.replace(**variant)
        config.task_object.check_names(config.options)
    out = Path(args.out)
    seeds = list(range(args.seeds))
    results = run_comparison(base, rows, seeds, out, run_options(args, out))
    table = aggregate(results, out, seeds, latency=not args.no_latency)
    atomic_write_text(out / "results.csv", results_csv(table))
    markdown = results_markdown(table, base, seeds, list(vary))
    atomic_write_text(out / "results.md", markdown)
    from ..report.compare_plot import plot_comparison

    plot_comparison(table, out / "compare.png", f"{base.task_object.title(base.options)}, {len(seeds)} seeds")
    print(markdown)
    print(f"results in {out}/results.md, results.csv, compare.png")
    return 0


COMMAND = register_command(
    Command("compare", "train every value of a field with one recipe and seeds; table and plot", add_arguments, run)
)
