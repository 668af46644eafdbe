"""Benchmark of training throughput: resnet18 with each attention, against plain resnet18 and timm's.

One training step = forward + backward + SGD step, CIFAR stem, 32×32 inputs, batch 128, CPU, float32.
Per attention: images/s, the ratio to plain attnlab resnet18, the ratio its FLOPs predict, and, where timm
has the module (se, eca, cbam), the ratio to timm's resnet18 with it (same stem), all interleaved in one run.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..layers.registry import list_attentions
from ..measure.cost import count_flops
from ..measure.machine import machine
from ..measure.timing import bracket_meaning, format_ratio, interleaved_samples, paired_ratio
from ..models.registry import create_model

TIMM_NAMES = {"se": "se", "eca": "eca", "cbam": "cbam"}


def timm_resnet18(attention: str, num_classes: int) -> nn.Module | None:
    """timm's resnet18 with its own module ``attention`` and attnlab's CIFAR stem; None without timm."""
    try:
        import timm
    except ImportError:
        return None
    m = timm.create_model("resnet18", num_classes=num_classes, block_args=dict(attn_layer=TIMM_NAMES[attention]))
    m.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    m.maxpool = nn.Identity()
    return m


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def run(attentions: Sequence[str], *, batch: int, rounds: int) -> list[dict]:
    torch.manual_seed(0)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    flops_in = torch.randn(1, 3, 32, 32)
    plain = create_model("resnet18", num_classes=10, stem="cifar")
    plain_flops = count_flops(plain, flops_in)
    rows = []
    for a in attentions:
        torch.manual_seed(0)
        model = create_model("resnet18", num_classes=10, stem="cifar", attention=a)
        fns = {"plain": train_step(plain, x, y), "attnlab": train_step(model, x, y)}
        theirs = timm_resnet18(a, 10) if a in TIMM_NAMES else None
        if theirs is not None:
            fns["timm"] = train_step(theirs, x, y)
        t = interleaved_samples(fns, torch.device("cpu"), rounds=rounds, warmup=1)
        rows.append(
            {
                "attention": a,
                "img_s": batch / statistics.median(t["attnlab"]),
                "vs_plain": paired_ratio(t["plain"], t["attnlab"]),
                "flops_ratio": plain_flops / count_flops(model, flops_in),
                "vs_timm": paired_ratio(t["timm"], t["attnlab"]) if "timm" in t else None,
            }
        )
    return rows


def to_markdown(rows: list[dict], batch: int, rounds: int) -> str:
    lines = [
        f"Training step (forward + backward + SGD), resnet18, CIFAR stem, 32×32, batch {batch}, float32, "
        f"{machine()}; median of {rounds} "
        "interleaved rounds. `python benchmarks/models.py`. Speed ratios: > 1 is faster than the reference; each "
        f"is the median of the per-round ratios, with {bracket_meaning(rounds)} in brackets.",
        "",
        "| attention | images/s | speed / plain | FLOPs predict | speed / timm |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        vs_timm = "—" if r["vs_timm"] is None else format_ratio(r["vs_timm"])
        vs_plain = format_ratio(r["vs_plain"])
        lines.append(f"| {r['attention']} | {r['img_s']:.1f} | {vs_plain} | {r['flops_ratio']:.3f} | {vs_timm} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attentions", default=None, help="comma-separated (default: every registered module)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    attentions = args.attentions.split(",") if args.attentions else list_attentions()
    print(to_markdown(run(attentions, batch=args.batch, rounds=args.rounds), args.batch, args.rounds))
    return 0
