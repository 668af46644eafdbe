"""Benchmark of the temporal modules: against pytorchvideo's non-local block, and their cost in a clip backbone.

1. ``non_local_st`` against pytorchvideo's ``NonLocal`` (``create_nonlocal``, softmax instantiation, 1×2×2
   max-pooling: the same block), its weights copied: the outputs are compared, then one training step each
   (forward + backward) is timed, interleaved, at the shapes of a ResNet's stages 3 and 4 on 8-frame clips. Each
   takes its own layout: attnlab per-frame maps (B·T, C, H, W), pytorchvideo (B, C, T, H, W).
2. The frame ResNet18 on 8-frame clips, plain and with each temporal module at its paper's place (TAM after the
   first conv of every block, non-local in stages 2-3, GLTR after stage 4): training-step time against the plain
   backbone, measured in the same interleaved run (no well-kept library has TAM or GLTR to compare with).
"""

from __future__ import annotations

import argparse
import platform
import statistics
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..layers.non_local_st import NonLocalSpaceTime
from ..measure.cost import count_params
from ..measure.timing import bracket_meaning, format_ratio, interleaved_samples, paired_ratio
from ..models.registry import create_model


def pytorchvideo_nonlocal(ours: NonLocalSpaceTime) -> nn.Module | None:
    """pytorchvideo's block with ``ours``' weights; None without pytorchvideo (the [bench] extra)."""
    try:
        from pytorchvideo.layers.nonlocal_net import create_nonlocal
    except ImportError:
        return None
    channels, inner = ours.attn.qkv.in_channels, ours.attn.splits[0]
    ref = create_nonlocal(dim_in=channels, dim_inner=inner, pool_size=(1, 2, 2), instantiation="softmax")
    w, b = ours.attn.qkv.weight, ours.attn.qkv.bias
    with torch.no_grad():
        for i, conv in enumerate((ref.conv_theta, ref.conv_phi, ref.conv_g)):
            conv.weight.copy_(w[i * inner : (i + 1) * inner].view_as(conv.weight))  # 1×1 = 1×1×1
            conv.bias.copy_(b[i * inner : (i + 1) * inner])
        ref.conv_out.weight.copy_(ours.attn.proj.weight.view_as(ref.conv_out.weight))
        ref.conv_out.bias.copy_(ours.attn.proj.bias)
        ref.norm.load_state_dict(ours.bn.state_dict())
    return ref


def _step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    return step


def nonlocal_rows(shapes: Sequence[tuple[int, int]], frames: int, batch: int, rounds: int) -> list[dict]:
    """``shapes``: (channels, side) of the maps, e.g. a ResNet18's stages 3 and 4 at 112 px."""
    rows = []
    for channels, size in shapes:
        torch.manual_seed(0)
        ours = NonLocalSpaceTime(channels, frames)
        with torch.no_grad():
            ours.bn.weight.fill_(0.5)  # not the identity at init, so the comparison sees the attention
        ref = pytorchvideo_nonlocal(ours)
        if ref is None:
            return []
        x = torch.randn(batch * frames, channels, size, size)
        clip = x.view(batch, frames, channels, size, size).transpose(1, 2).contiguous()  # (B, C, T, H, W)
        ours.eval(), ref.eval()
        with torch.no_grad():
            diff = (ours(x).view(batch, frames, channels, size, size).transpose(1, 2) - ref(clip)).abs().max().item()
        t = interleaved_samples({"ours": _step(ours, x), "ref": _step(ref, clip)}, torch.device("cpu"), rounds=rounds)
        rows.append(
            {
                "shape": f"{batch}×{frames} frames, C {channels}, {size}×{size}",
                "ms": statistics.median(t["ours"]) * 1e3,
                "ref_ms": statistics.median(t["ref"]) * 1e3,
                "ratio": paired_ratio(t["ours"], t["ref"]),
                "max_diff": diff,
            }
        )
    return rows


def backbone_rows(modules: Sequence[str], frames: int, batch: int, size: int, rounds: int) -> list[dict]:
    x = torch.randn(batch * frames, 3, size, size)
    steps, params = {}, {}
    for name in ("none", *modules):
        torch.manual_seed(0)
        kwargs = {"attention": name, "attention_kwargs": {"num_frames": frames}} if name != "none" else {}
        model = create_model("resnet18", num_classes=10, **kwargs)
        steps[name], params[name] = _step(model, x), count_params(model)
    t = interleaved_samples(steps, torch.device("cpu"), rounds=rounds)
    return [
        {
            "module": name,
            "ms": statistics.median(t[name]) * 1e3,
            "params": params[name],
            "ratio": paired_ratio(t[name], t["none"]),
        }
        for name in ("none", *modules)
    ]


def to_markdown(nl: list[dict], bb: list[dict], *, frames: int, batch: int, size: int, rounds: int) -> str:
    machine = f"CPU ({platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__})"
    lines = [
        f"Training step (forward + backward), float32, {machine}; median of {rounds} interleaved rounds, the ratio "
        f"the median of per-round ratios with {bracket_meaning(rounds)} in brackets (< 1: faster). "
        "`python benchmarks/video.py`.",
        "",
    ]
    if nl:
        lines += [
            "| non-local over space-time | attnlab ms | pytorchvideo ms | time / pytorchvideo | max |Δ| |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in nl:
            ratio = format_ratio(r["ratio"])
            lines.append(f"| {r['shape']} | {r['ms']:.1f} | {r['ref_ms']:.1f} | {ratio} | {r['max_diff']:.1e} |")
        lines.append("")
    else:
        lines += ["(pytorchvideo not installed: `pip install -e '.[bench]'` for the non-local comparison)", ""]
    lines += [
        f"| ResNet18 on {batch} clips × {frames} frames, {size}×{size} | ms | params | time / plain |",
        "|---|---:|---:|---:|",
    ]
    for r in bb:
        lines.append(f"| {r['module']} | {r['ms']:.0f} | {r['params']:,} | {format_ratio(r['ratio'])} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, default=112, help="frame side for the backbone rows")
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args(argv)
    nl = nonlocal_rows([(256, 14), (512, 7)], args.frames, args.batch, args.rounds)
    bb = backbone_rows(("tam", "non_local_st", "gltr"), args.frames, args.batch, args.size, args.rounds)
    print(to_markdown(nl, bb, frames=args.frames, batch=args.batch, size=args.size, rounds=args.rounds))
    return 0
