"""Benchmark of the attention zoo: forward + backward CPU latency, against identity and against timm.

Per registered module, on x of shape (8, 256, 28, 28) by default: the median time of ``m(x)`` and its
backward pass, as a ratio to an identity module, and, where timm has the same module, to timm's at the
same configuration, all timed interleaved in one run; each ratio is the median of per-round ratios (paired by
round), timm's with the 95 % confidence interval of that median. ``--doc docs/zoo.md`` rewrites the zoo page
with the table.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..layers.registry import attention_info, create_attention, list_attentions
from ..measure.machine import machine
from ..measure.timing import bracket_meaning, format_ratio, interleaved_samples, paired_ratio


def _timm_gc(tl, channels: int) -> nn.Module:
    """timm's GlobalContext as GC-ResNet's block: addition fusion only, r = 16, the official LayerNorm eps 1e-5."""
    m = tl.GlobalContext(channels, fuse_add=True, fuse_scale=False, rd_channels=channels // 16)
    m.mlp_add.norm.eps = 1e-5
    return m


def _timm_sra(channels: int) -> nn.Module:
    from timm.models.pvt_v2 import Attention

    from ..layers.sra import TokensOnMap

    return TokensOnMap(Attention(channels, num_heads=2, sr_ratio=4))


def _timm_bat(channels: int) -> nn.Module:
    """timm's BatNonLocalAttn as the official BATBlock: C' = C/2, 4 groups, biases on the 1×1 convs before the BNs."""
    from timm.layers.non_local_attn import BatNonLocalAttn

    m = BatNonLocalAttn(channels, groups=4, rd_channels=channels // 2)
    for conv in (m.conv1.conv, m.ba.conv1.conv, m.ba.conv2.conv, m.conv2.conv):
        conv.bias = nn.Parameter(torch.zeros(conv.out_channels))
    return m


def timm_counterparts(channels: int) -> dict[str, Callable[[], nn.Module]]:
    """timm's modules configured as attnlab's defaults (the papers'); empty without timm."""
    try:
        from timm import layers as tl
        from timm.layers.cbam import CbamModule, LightCbamModule
        from timm.layers.halo_attn import HaloAttn
        from timm.layers.lambda_layer import LambdaLayer
    except ImportError:
        return {}
    c = channels
    makers = {
        "se": lambda: tl.SEModule(c, rd_channels=c // 16),  # C/16 unrounded (timm rounds to multiples of 8)
        "eca": lambda: tl.EcaModule(channels=c),  # adaptive k from C, as the paper
        "ese": lambda: tl.EffectiveSEModule(c),  # the same module at its defaults
        "ceca": lambda: tl.CecaModule(channels=c),  # the same modules (timm's factory's ceca and ecam)
        "ecam": lambda: tl.EcaModule(channels=c, use_mlp=True),
        "lcbam": lambda: LightCbamModule(c),  # the same module at its defaults
        "cbam": lambda: CbamModule(c, rd_ratio=1 / 16, spatial_kernel_size=7, mlp_bias=True),
        "gc": lambda: _timm_gc(tl, c),
        "gca": lambda: tl.GlobalContext(c, fuse_add=True, fuse_scale=False),  # timm's factory's gca: the same module
        "non_local": lambda: tl.NonLocalAttn(c, use_scale=False, rd_ratio=1 / 2),
        "lambda": lambda: LambdaLayer(c),  # the same modules at their defaults (timm's factory's lambda and halo;
        "halo": lambda: HaloAttn(c),  # timm's HaloAttn takes H, W multiples of 8 only: none at the default 28×28)
        "bat": lambda: _timm_bat(c),
        # paper: G = 32 groups, d = max(C/16, 32), full input to every branch
        "sk": lambda: tl.SelectiveKernel(c, c, groups=32, rd_channels=max(32, c // 16), split_input=False),
        "splat": lambda: tl.SplitAttn(c, c, radix=2, rd_ratio=0.25, norm_layer=nn.BatchNorm2d),
        # the official SegFormer Attention (pvt_v2's in timm) on tokens, MiT stage 2: 2 heads, sr_ratio 4
        "sra": lambda: _timm_sra(c),
    }
    try:  # timm >= 1.0.20
        from timm.layers.coord_attn import CoordAttn, EfficientLocalAttn, SimpleCoordAttn, StripAttn

        makers["coord"] = lambda: CoordAttn(c, rd_channels=max(8, c // 32), bias=True)  # the paper's mip
        makers["scoord"] = lambda: SimpleCoordAttn(c)  # the same modules at their defaults (timm's factory's)
        makers["ela"] = lambda: EfficientLocalAttn(c)
        makers["strip"] = lambda: StripAttn(c)
    except ImportError:
        pass
    return makers


def _takes(m: nn.Module, x: torch.Tensor) -> bool:
    """Whether timm's module runs on x (its HaloAttn asserts H, W multiples of its block): not timed otherwise."""
    try:
        with torch.no_grad():
            m(x)  # the whole batch: a batch of one fails the BN of a module in training mode (SK's)
    except AssertionError:
        return False
    return True


def _step(m: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        x.grad = None
        m(x).backward(grad)

    return run


def run(names: Sequence[str], *, shape: tuple[int, int, int, int], rounds: int) -> list[dict]:
    torch.manual_seed(0)
    x = torch.randn(*shape, requires_grad=True)
    grad = torch.randn(*shape)
    timm_makers = timm_counterparts(shape[1])
    rows = []
    identity = _step(nn.Identity(), x, grad)
    for name in names:
        clip = {"num_frames": shape[0]} if attention_info(name).per_frame else {}  # temporal: the batch is one clip
        fns = {"identity": identity, "attnlab": _step(create_attention(name, shape[1], **clip).train(), x, grad)}
        theirs = timm_makers[name]().train() if name in timm_makers else None
        if theirs is not None and _takes(theirs, x):
            fns["timm"] = _step(theirs, x, grad)
        t = interleaved_samples(fns, torch.device("cpu"), rounds=rounds, warmup=2)
        rows.append(
            {
                "name": name,
                "ms": statistics.median(t["attnlab"]) * 1e3,
                "vs_identity": paired_ratio(t["attnlab"], t["identity"]).median,
                "timm_ms": statistics.median(t["timm"]) * 1e3 if "timm" in t else None,
                "vs_timm": paired_ratio(t["attnlab"], t["timm"]) if "timm" in t else None,  # time ratio: < 1 is faster
            }
        )
    return rows


def to_markdown(rows: list[dict], shape: tuple[int, ...], rounds: int) -> str:
    lines = [
        f"Forward + backward, x = {tuple(shape)}, float32, {machine()}; median of {rounds} interleaved rounds. "
        "`python benchmarks/modules.py`. Ratios are medians of per-round ratios; attnlab / timm < 1 is faster than "
        f"timm, with {bracket_meaning(rounds)} in brackets.",
        "",
        "| module | attnlab (ms) | / identity | timm (ms) | attnlab / timm |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        timm_ms = "—" if r["timm_ms"] is None else f"{r['timm_ms']:.2f}"
        vs_timm = "—" if r["vs_timm"] is None else format_ratio(r["vs_timm"])
        lines.append(f"| `{r['name']}` | {r['ms']:.2f} | {r['vs_identity']:.1f} | {timm_ms} | {vs_timm} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modules", default=None, help="comma-separated names (default: every registered module)")
    p.add_argument("--shape", default="8,256,28,28", help="input shape B,C,H,W (default 8,256,28,28)")
    p.add_argument("--rounds", type=int, default=15, help="timed rounds per module (default 15)")
    p.add_argument("--doc", metavar="FILE.md", help="also regenerate the zoo page with this table")
    args = p.parse_args(argv)
    names = args.modules.split(",") if args.modules else list_attentions()
    shape = tuple(int(s) for s in args.shape.split(","))
    table = to_markdown(run(names, shape=shape, rounds=args.rounds), shape, args.rounds)
    print(table)
    if args.doc:
        from pathlib import Path

        from .zoo_doc import zoo_markdown, zoo_rows

        Path(args.doc).write_text(zoo_markdown(zoo_rows(), table))
        print(f"\nwrote {args.doc}")
    return 0
