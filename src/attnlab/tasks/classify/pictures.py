"""The classify task's picture: inputs with labels, the spatial attention maps per ResNet stage, channel
weights, Grad-CAM."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from ...report.maps import capture_gates, channel_weights, grad_cam, spatial_maps
from ...report.plots import save_figure
from ...report.plots import show_image as _show_image

__all__ = ["last_per_stage", "plot_attention_grid"]


def last_per_stage(names: list[str]) -> list[str]:
    """One map per place: the last gate of each ``layerN`` (and each between-stage ``attn.layerN``)."""
    chosen: dict[str, str] = {}
    for name in names:
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] == "attn" else parts[0]
        chosen[key] = name
    return list(chosen.values())


def _cam_layer(model: nn.Module, x: Tensor) -> str:
    """The deepest stage whose map is at least 2×2 on ``x`` (layer4's is 1×1 for 28×28 digits)."""
    shapes: dict[str, tuple[int, ...]] = {}
    names = ("layer4", "layer3", "layer2", "layer1")
    handles = [
        getattr(model, n).register_forward_hook(lambda m, a, out, n=n: shapes.__setitem__(n, out.shape)) for n in names
    ]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return next((n for n in names if min(shapes[n][-2:]) >= 2), "layer1")


def plot_attention_grid(
    model: nn.Module, x: Tensor, labels: Tensor, classes: list[str], mean, std, path: str | Path, title: str
) -> Path:
    """Rows: images. Columns: input, one spatial map per stage (overlaid), channel weights, Grad-CAM."""
    model.eval()
    with torch.no_grad(), capture_gates(model) as maps:
        pred = model(x).argmax(1)
    spatial = spatial_maps(maps)
    spatial_names = last_per_stage(list(spatial))
    channel = channel_weights(maps)
    last_channel = list(channel)[-1] if channel else None
    cam_layer = _cam_layer(model, x)
    cam = grad_cam(model, getattr(model, cam_layer), x)
    cols = 1 + len(spatial_names) + (1 if last_channel else 0) + 1
    fig = Figure(figsize=(2.3 * cols, 2.3 * len(x) + 0.6), layout="constrained")
    axes = fig.subplots(len(x), cols, squeeze=False)
    for i in range(len(x)):
        row = axes[i]
        _show_image(row[0], x[i], mean, std)
        ok = "✓" if pred[i] == labels[i] else "✗"
        row[0].set_title(f"true {classes[labels[i]]}, pred {classes[pred[i]]} {ok}", fontsize=8)
        for j, name in enumerate(spatial_names, start=1):
            m = F.interpolate(spatial[name][i : i + 1].float(), size=x.shape[-2:], mode="bilinear")[0, 0]
            _show_image(row[j], x[i], mean, std)
            row[j].imshow(m.cpu().numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=max(float(m.max()), 1e-6))
            row[j].set_title(f"{name.removesuffix('.gate')}\n({tuple(spatial[name].shape[-2:])})", fontsize=7)
        if last_channel:
            w = channel[last_channel][i].float().cpu()
            top = w.topk(min(16, w.numel()))
            ax = row[len(spatial_names) + 1]
            ax.bar(range(len(top.values)), top.values.numpy(), color="tab:purple")
            ax.set_xticks(range(len(top.values)), [str(int(c)) for c in top.indices], rotation=90, fontsize=5)
            ax.set_ylim(0, max(1.0, float(top.values.max())))
            ax.set_title(f"top channel weights\n{last_channel.removesuffix('.gate')}", fontsize=7)
            ax.set_xlabel("channel", fontsize=7)
        _show_image(row[-1], x[i], mean, std)
        row[-1].imshow(cam[i].cpu().numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
        row[-1].set_title(f"Grad-CAM ({cam_layer})", fontsize=8)
        for ax in row:
            if not ax.get_title().startswith("top channel"):
                ax.set_xticks([])
                ax.set_yticks([])
    fig.suptitle(title)
    return save_figure(fig, path)
