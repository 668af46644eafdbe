"""``attnlab list attentions``: the registries as tables."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ..layers.registry import CATEGORIES, attention_info, list_attentions
from .base import Command, register_command

COLUMNS = ("name", "category", "paper", "venue", "year", "params at C=256", "placement")


def attention_rows(category: str | None = None) -> list[tuple[str, ...]]:
    rows = []
    for name in list_attentions(category):
        info = attention_info(name)
        rows.append(
            (name, info.category, info.paper, info.venue, str(info.year), f"{info.num_params(256):,}", info.placement)
        )
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["attentions"], help="which registry to list")
    p.add_argument("--category", choices=CATEGORIES, help="only this category of the survey")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")


def run(args: argparse.Namespace) -> int:
    rows = attention_rows(args.category)
    if args.markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return 0
    table = Table(title=f"{len(rows)} attention modules", title_justify="left")
    for col in COLUMNS:
        table.add_column(col, justify="right" if col.startswith(("year", "params")) else "left", overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    return 0


COMMAND = register_command(
    Command("list", "the registry as a table (name, category, paper, year, params)", add_arguments, run)
)
