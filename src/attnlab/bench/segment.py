"""Benchmark of the U-Nets' training throughput against MONAI's U-Nets of the same depth and widths.

One training step = forward + backward + AdamW step on a batch of crops (default 16 × 1 × 96 × 96), BCE loss,
CPU, float32. attnlab's ``unet`` against MONAI's ``BasicUNet`` (batch norm and ReLU, as attnlab's; features
width·(1, 2, 4, 8, 16), width), ``attention_unet`` against MONAI's ``AttentionUnet`` (channels width·2^i,
stride 2); the residual variants against attnlab's plain ``unet``. Interleaved in one run, paired by round.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..measure.cost import count_params
from ..measure.machine import machine
from ..measure.timing import bracket_meaning, format_ratio, interleaved_samples, paired_ratio
from ..models.registry import create_model


def monai_reference(name: str, width: int, depth: int) -> nn.Module | None:
    """MONAI's U-Net matching attnlab's ``name``; None without MONAI or without a counterpart."""
    try:
        from monai.networks.nets import AttentionUnet, BasicUNet
    except ImportError:
        return None
    widths = tuple(width * 2**i for i in range(depth + 1))
    if name == "unet" and depth == 4:
        return BasicUNet(2, 1, 1, features=(*widths, width), norm="batch", act="relu")
    if name == "attention_unet":
        return AttentionUnet(2, 1, 1, channels=widths, strides=(2,) * depth)
    return None


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(model(x), y).backward()
        opt.step()

    return step


def run(names: Sequence[str], *, width: int, depth: int, batch: int, crop: int, rounds: int) -> list[dict]:
    torch.manual_seed(0)
    x = torch.randn(batch, 1, crop, crop)
    y = (torch.rand(batch, 1, crop, crop) > 0.8).float()
    plain = create_model("unet", width=width, depth=depth)
    rows = []
    for name in names:
        torch.manual_seed(0)
        ours = create_model(name, width=width, depth=depth)
        ref = monai_reference(name, width, depth)
        ref_name = type(ref).__name__ if ref is not None else "attnlab unet"
        ref = ref if ref is not None else plain
        t = interleaved_samples(
            {"ours": train_step(ours, x, y), "ref": train_step(ref, x, y)}, torch.device("cpu"), rounds=rounds
        )
        rows.append(
            {
                "model": name,
                "reference": ref_name,
                "crops_s": batch / statistics.median(t["ours"]),
                "params": count_params(ours),
                "ref_params": count_params(ref),
                "speed": paired_ratio(t["ref"], t["ours"]),
            }
        )
    return rows


def to_markdown(rows: list[dict], *, width: int, depth: int, batch: int, crop: int, rounds: int) -> str:
    lines = [
        f"Training step (forward + backward + AdamW), batch {batch} × 1 × {crop} × {crop}, width {width}, "
        f"depth {depth}, float32, {machine()}; median of {rounds} interleaved rounds. "
        "`python benchmarks/segment.py`. Speed: > 1 is faster than the reference; the median of the per-round "
        f"ratios, with {bracket_meaning(rounds)} in brackets.",
        "",
        "| model | crops/s | params | reference | its params | speed / reference |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['crops_s']:.1f} | {r['params']:,} | {r['reference']} | {r['ref_params']:,} | "
            f"{format_ratio(r['speed'])} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="unet,attention_unet,res_unet,res_attention_unet")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args(argv)
    shape = {"width": args.width, "depth": args.depth, "batch": args.batch, "crop": args.crop}
    rows = run(args.models.split(","), rounds=args.rounds, **shape)
    print(to_markdown(rows, rounds=args.rounds, **shape))
    return 0
