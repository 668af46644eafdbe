"""``attnlab predict``: a trained run on the user's own files; one line per input, or a CSV with ``--out``.

The run's task adds its own flags (``--top`` for images and videos, ``--text`` for texts, ``--format`` …):
``attnlab predict --checkpoint RUN --help`` lists them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..engine.checkpoint import atomic_write_text
from ..engine.run_folder import load_run
from ..report.tables import csv_text
from .base import Command, register_command
from .options import run_task


def add_arguments(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder (its best.safetensors) or a .safetensors file")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="files to predict (images, masks' images, videos, texts)")
    p.add_argument(
        "--out",
        default=None,
        help="write the predictions to this CSV file instead of printing them (a segmentation run: the folder its "
        "files go to, default segmented/)",
    )
    p.add_argument("--device", default="cpu")
    task = run_task(argv)
    if task is None:
        p.epilog = "With --checkpoint RUN, --help also lists the flags of RUN's task (--top, --text, --format, …)."
        return
    p.set_defaults(_task_name=task.name)
    task.CLI.add_predict_arguments(p.add_argument_group(f"{task.name} runs"))


def run(args: argparse.Namespace) -> int:
    run_ = load_run(args.checkpoint, device=args.device)
    cli = run_.cli
    inputs = list(args.inputs)
    if not inputs and not cli.reads_no_files(args):
        raise ValueError(f"INPUT: expected at least one file to predict for task {run_.task.name!r}, got none")
    rows = cli.predict(run_.model, inputs, args)
    failed = [r for r in rows if "error" in r]
    for r in failed:
        print(f"attnlab predict: error: {r['error']}", file=sys.stderr)
    good = [r for r in rows if "error" not in r]
    if args.out and not cli.out_folder:
        flat = [cli.prediction_fields(r) for r in good]
        if flat:
            out = Path(args.out)
            atomic_write_text(out, csv_text(flat))
            print(f"{len(flat)} predictions written to {out}")
    else:
        for r in good:
            print(cli.format_prediction(r))
    return 2 if failed else 0


COMMAND = register_command(
    Command(
        "predict",
        "run a trained model on your own files (one line per file, or --out FILE.csv)",
        add_arguments,
        run,
        task_flags="predict",
    )
)
