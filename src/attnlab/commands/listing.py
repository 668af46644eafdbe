"""``attnlab list attentions|models``: the registries as tables."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from ..layers.registry import CATEGORIES, attention_info, list_attentions
from ..measure.cost import count_params
from ..models.placement import paper_place
from ..models.registry import create_model, list_models
from ..tasks import get_task, list_tasks
from .base import Command, register_command

COLUMNS = {
    "attentions": ("name", "category", "paper", "venue", "year", "params at C=256", "placement"),
    "models": ("name", "built of", "layout", "params (default classes)"),
    "tasks": ("name", "what", "best checkpoint by", "options"),
}


def attention_rows(category: str | None = None) -> list[tuple[str, ...]]:
    rows = []
    for name in list_attentions(category):
        info = attention_info(name)
        rows.append(
            (
                name,
                info.category,
                info.paper,
                info.venue,
                str(info.year),
                f"{info.num_params(256):,}",
                paper_place(name).placement,
            )
        )
    return rows


def model_rows() -> list[tuple[str, ...]]:
    """Each registered model at its defaults: what it is built of (its ``describe()``, where it has one), params."""
    rows = []
    for name in list_models():
        m = create_model(name)
        describe = getattr(m, "describe", None)
        block, layout = describe() if callable(describe) else (type(m).__name__, "")
        rows.append((name, block, layout, f"{count_params(m):,}"))
    return rows


def task_rows() -> list[tuple[str, ...]]:
    rows = []
    for name in list_tasks():
        task = get_task(name)  # the class: its name, options and monitor
        metric, mode = task.monitor
        options = ", ".join(f.name for f in dataclasses.fields(task.Options))
        rows.append((name, task.description, f"{mode} {metric}", options))
    return rows


ROWS = {
    "attentions": lambda args: attention_rows(args.category),
    "models": lambda args: model_rows(),
    "tasks": lambda args: task_rows(),
}


def add_arguments(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("what", choices=sorted(COLUMNS), help="which registry to list")
    p.add_argument("--category", choices=CATEGORIES, help="attentions: only this category of the survey")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")


def run(args: argparse.Namespace) -> int:
    columns = COLUMNS[args.what]
    rows = ROWS[args.what](args)
    if args.markdown:
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return 0
    table = Table(title=f"{len(rows)} {args.what}", title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col.startswith(("year", "params")) else "left", overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    return 0


COMMAND = register_command(
    Command("list", "a registry as a table: attentions (paper, year, params), models or tasks", add_arguments, run)
)
