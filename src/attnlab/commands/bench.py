"""``attnlab bench attention|modules|models|train|segment|text|video``: the benchmarks/ scripts, on the user's own
hardware."""

from __future__ import annotations

import argparse
import importlib

from .base import Command, register_command

# name -> module under attnlab.bench with a main(argv) (imported only when run)
BENCHMARKS = {
    "attention": "attention",
    "modules": "modules",
    "models": "models",
    "train": "train",
    "segment": "segment",
    "text": "text",
    "video": "video",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("which", choices=sorted(BENCHMARKS), help="which benchmark")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its own options (see `attnlab bench WHICH --help`)")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"attnlab.bench.{BENCHMARKS[args.which]}")
    return module.main(args.args)


COMMAND = register_command(
    Command(
        "bench",
        "run a benchmark (attention, modules, models, train, segment, text, video) and print its table",
        add_arguments,
        run,
    )
)
