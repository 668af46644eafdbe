"""``attnlab compare``: the same recipe and seeds for every value of the varied fields; one table and one plot.

attnlab compare --vary attention=none,se,cbam                 (classification's default: none,se,eca,cbam)
attnlab compare --attention none,se,cbam                      (the same: a comma list of one flag varies it)
attnlab compare --task segment --vary model=unet,attention_unet --seeds 3
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..engine.checkpoint import atomic_write_text
from ..engine.compare import aggregate, reference_variant, run_comparison, variants
from ..engine.config import TrainConfig
from ..engine.run_folder import RUNS, SUMMARY
from ..report.compare_table import comparison_markdown
from ..report.tables import csv_text
from ..tasks import Task, get_task
from .base import Command, register_command
from .config_file import field_choices, field_hints, to_yaml
from .options import Varied, add_config_arguments, chosen_task, config_values, parse_value
from .train import add_run_arguments, run_options


def add_arguments(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="FIELD=A,B,…",
        help="a field and its values, e.g. attention=none,se,cbam or model=unet,attention_unet (repeatable: "
        "every combination); default: the task's own comparison",
    )
    add_config_arguments(p, argv, lists=True)
    p.set_defaults(_task_name=chosen_task(argv))
    p.add_argument("--seeds", type=int, default=3, help="runs per row, seeds 0..N-1 (default 3)")
    p.add_argument("--out", default="runs/compare", help="folder of the runs and results (default runs/compare)")
    p.add_argument("--no-latency", action="store_true", help="skip the batch-1 latency column")
    p.add_argument(
        "--reference",
        default=None,
        help="the row the others are paired with, by its name (none, se, …; default: the row without attention "
        "where attention is varied, else the first)",
    )
    add_run_arguments(p)


def _parse(task: type[Task], name: str, texts: list[str], where: str) -> list:
    hints = field_hints(task)
    if name not in hints:
        raise ValueError(f"{where}: task {task.name!r} has no field {name!r}; its fields are {sorted(hints)}")
    return [parse_value(hints[name], t.strip(), f"{where} {name}", field_choices(task, name)) for t in texts]


def parse_vary(args: argparse.Namespace, task: type[Task], values: dict) -> dict[str, list]:
    """``--vary`` items, and every flag given as a comma list (``--attention none,se``), as field -> values;
    the varied fields leave ``values`` (they are not base options)."""
    vary: dict[str, list] = {}
    for name in [k for k, v in values.items() if isinstance(v, Varied)]:
        vary[name] = list(values.pop(name))
    for text in args.vary:
        name, sep, items = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not items:
            raise ValueError(f"--vary: expected FIELD=A,B,…, got {text!r}")
        if name in vary:
            raise ValueError(f"--vary: {name!r} given twice")
        vary[name] = _parse(task, name, items.split(","), "--vary")
        values.pop(name, None)
    if not vary:
        vary = {k: _parse(task, k, vs, "--vary") for k, vs in task.default_vary.items()}
    return vary


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise ValueError(f"--seeds: expected a positive int, got {args.seeds}")
    task_name, values = config_values(args)
    vary = parse_vary(args, get_task(task_name), values)
    base = TrainConfig.create(task_name, **values)
    if args.print_config:
        print(
            to_yaml(base.to_dict()) + "".join(f"# vary {k}: {', '.join(map(str, vs))}\n" for k, vs in vary.items()),
            end="",
        )
        return 0
    rows = variants(vary)
    reference_variant(rows, args.reference)  # a misspelled --reference fails now, not after the training
    for variant in rows:  # unknown names fail now, with suggestions, not after hours of training
        task = base.replace(**variant).new_task(runs=RUNS)
        if all((need.folder / SUMMARY).is_file() for need in task.prerequisites()):  # else: once fit made them
            task.check_names()
    out = Path(args.out)
    seeds = list(range(args.seeds))
    results = run_comparison(base, rows, seeds, out, run_options(args, out))
    table = aggregate(results, out, seeds, latency=not args.no_latency, reference=args.reference)
    atomic_write_text(out / "results.csv", csv_text(table))
    task = base.new_task()
    markdown = comparison_markdown(
        table, title=task.title(), recipe=base.recipe, seeds=seeds, fields=list(vary), is_fraction=task.is_fraction
    )
    atomic_write_text(out / "results.md", markdown)
    from ..report.compare_plot import plot_comparison

    plot_comparison(table, out / "compare.png", f"{task.title()}, {len(seeds)} seeds")
    print(markdown)
    print(f"results in {out}/results.md, results.csv, compare.png")
    return 0


COMMAND = register_command(
    Command(
        "compare",
        "train every value of a field with one recipe and seeds; table and plot",
        add_arguments,
        run,
        task_flags="options",
    )
)
