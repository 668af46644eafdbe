"""``attnlab export``: a trained model as ONNX, TorchScript or a torch.export program."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..engine.evaluation import checkpoint_file, load_run_model
from ..engine.export import FORMATS, check_format, export_model
from .base import Command, register_command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder (its best.safetensors) or a .safetensors file")
    p.add_argument("--format", choices=list(FORMATS), default="onnx")
    p.add_argument("--out", default=None, help="file to write (default: beside the checkpoint, model.<ext>)")


def run(args: argparse.Namespace) -> int:
    check_format(args.format)  # before loading anything
    model, bundle, _, _ = load_run_model(args.checkpoint)
    out = Path(args.out) if args.out else checkpoint_file(args.checkpoint).parent / f"model{FORMATS[args.format]}"
    example = torch.zeros(2, bundle.in_chans, bundle.image_size, bundle.image_size)
    print(f"wrote {export_model(model, example, args.format, out)}")
    return 0


COMMAND = register_command(
    Command("export", "export a trained model: onnx, torchscript or exported (torch.export)", add_arguments, run)
)
