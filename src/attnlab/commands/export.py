"""``attnlab export``: a trained model as ONNX, TorchScript or a torch.export program."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..engine.export import FORMATS, check_format, export_model
from ..engine.run_folder import load_run
from .base import Command, register_command


def add_arguments(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder (its best.safetensors) or a .safetensors file")
    p.add_argument("--format", choices=list(FORMATS), default="onnx")
    p.add_argument("--out", default=None, help="file to write (default: beside the checkpoint, model.<ext>)")


def run(args: argparse.Namespace) -> int:
    check_format(args.format)  # before loading anything
    run_ = load_run(args.checkpoint)
    out = Path(args.out) if args.out else run_.file.parent / f"model{FORMATS[args.format]}"
    example = run_.task.example_input(batch=2)
    print(f"wrote {export_model(run_.model, example, args.format, out, dynamic=run_.task.export_dynamic())}")
    return 0


COMMAND = register_command(
    Command("export", "export a trained model: onnx, torchscript or exported (torch.export)", add_arguments, run)
)
