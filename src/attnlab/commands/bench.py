"""``attnlab bench attention|modules|models|train|segment|text|video``: the benchmarks/ scripts, on the user's own
hardware."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from .base import Command, register_command

# modules under attnlab.bench with a main(argv) (imported only when run)
BENCHMARKS = ("attention", "modules", "models", "train", "segment", "text", "video", "your-data", "profile")


def add_arguments(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("which", choices=sorted(BENCHMARKS), help="which benchmark")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its own options (see `attnlab bench WHICH --help`)")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"attnlab.bench.{args.which.replace('-', '_')}")  # your-data: your_data
    return module.main(args.args)


COMMAND = register_command(
    Command(
        "bench",
        f"run a benchmark ({', '.join(BENCHMARKS)}) and print its table",
        add_arguments,
        run,
    )
)
