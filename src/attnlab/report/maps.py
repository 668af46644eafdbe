"""Attention maps by forward hooks on the modules' ``gate`` / ``gates`` submodules, and Grad-CAM.

No special case per module: every zoo module routes its weights through a submodule named ``gate`` (or
one held in ``gates``). A captured (B, C, h, w) output with h·w > 1 is a spatial map (averaged over C:
CBAM's (B, 1, H, W), BAM's 3-D map, coordinate attention's strips); a (B, heads, N, h, w) output of
self-attention (non-local, DANet, BoTNet) is the attention each key position receives, averaged over
heads and queries; (B, C, 1, 1) is a channel weighting; anything else (criss-cross's row-and-column
weights, GC's pooling weights over N) is kept but not drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["gate_modules", "capture_gates", "spatial_maps", "channel_weights", "grad_cam"]


def gate_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Submodules named ``gate``, or held in a container named ``gates``, by qualified name."""
    found = {}
    for name, module in model.named_modules():
        parts = name.split(".")
        if parts[-1] == "gate" or (len(parts) > 1 and parts[-2] == "gates"):
            found[name] = module
    return found


@contextmanager
def capture_gates(model: nn.Module) -> Iterator[dict[str, Tensor]]:
    """``with capture_gates(model) as maps: model(x)`` fills ``maps`` with each gate's output (detached)."""
    maps: dict[str, Tensor] = {}
    handles = [
        module.register_forward_hook(lambda m, args, out, name=name: maps.__setitem__(name, out.detach()))
        for name, module in gate_modules(model).items()
    ]
    try:
        yield maps
    finally:
        for h in handles:
            h.remove()


def spatial_maps(maps: dict[str, Tensor]) -> dict[str, Tensor]:
    """The gates' spatial maps as (B, 1, h, w), in capture order."""
    out = {}
    for k, v in maps.items():
        if v.dim() == 4 and v.shape[2] * v.shape[3] > 1:
            out[k] = v.float().mean(dim=1, keepdim=True)
        elif v.dim() == 5 and v.shape[3] * v.shape[4] > 1:  # (SK's (B, M, C, 1, 1) is no map)
            out[k] = v.float().mean(dim=(1, 2))[:, None]
    return out


def channel_weights(maps: dict[str, Tensor]) -> dict[str, Tensor]:
    """The (B, C, 1, 1) channel weightings, as (B, C)."""
    return {k: v.flatten(1) for k, v in maps.items() if v.dim() == 4 and v.shape[1] > 1 and v.shape[2:] == (1, 1)}


def grad_cam(model: nn.Module, layer: nn.Module, x: Tensor, target: Tensor | None = None) -> Tensor:
    """Grad-CAM (Selvaraju et al., ICCV 2017) on ``layer``'s output: ReLU(Σ_c mean(∂y/∂A_c) A_c), in [0, 1].

    Returns (B, H, W) maps at the input's size; ``target`` classes default to the predictions.
    """
    store: dict[str, Tensor] = {}

    def keep(module, args, out):
        out.retain_grad()
        store["a"] = out

    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(x)
            target = logits.argmax(1) if target is None else target
            logits.gather(1, target[:, None]).sum().backward()
    finally:
        handle.remove()
    a = store["a"]
    cam = F.relu((a.grad.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp(min=1e-12)[:, None, None]
    return cam / peak
