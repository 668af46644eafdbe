"""EMA: efficient multi-scale attention with cross-spatial learning (Ouyang et al.; ICASSP 2023)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


def ema_groups(channels: int, factor: int) -> int:
    """The groups G: the largest divisor of C that is at most ``factor`` and leaves at least 2 channels per group.

    With one channel per group the cross-spatial step's softmax over the group's channels is 1 whatever its input,
    and the module no longer mixes channels; so C = 32 at the default 32 takes 16 groups. Only C = 1 keeps G = 1.
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor: expected a positive int, got {factor!r}")
    fits = [g for g in range(1, min(factor, channels) + 1) if channels % g == 0 and channels // g >= 2]
    return max(fits, default=1)


@register_attention(
    "ema",
    category="channel_spatial",
    paper="Efficient Multi-Scale Attention Module with Cross-Spatial Learning",
    venue="ICASSP",
    year=2023,
    url="https://arxiv.org/abs/2305.13563",
)
class EfficientMultiScaleAttention(nn.Module):
    """EMA: channels split into G groups of c = C/G; per group two branches and a cross-spatial aggregation.

        x_g = x split into G groups                                  (B·G, c, H, W)
        g_h, g_w = σ(conv1×1([mean_W x_g; mean_H x_g]))              1×1 branch: (B·G, c, H, 1), (B·G, c, 1, W)
        x1 = GN(x_g · g_h · g_w)                                     GroupNorm with c groups of one channel
        x2 = conv3×3(x_g)                                            3×3 branch  (B·G, c, H, W)
        a1 = softmax_c(GAP(x1)),  a2 = softmax_c(GAP(x2))            (B·G, 1, c)
        w = a1 · x2 + a2 · x1                                        cross-spatial learning (B·G, 1, H, W)
        out = x_g · σ(w), groups joined back                         (B, C, H, W)

    G = ``factor`` = 32 as the official code (github.com/YOLOonMe/EMA-attention-module, class EMA); both convs have
    biases; the softmaxes and pools are parameter-free. Where 32 does not divide C, or leaves one channel per group
    (C = 32: a softmax over one channel is 1, so no channel mixing), G is the largest divisor of C at most 32 with
    at least two channels per group (``ema_groups``): 16 at C = 32, 32 at every ResNet width (64 … 2048). The
    official code accepts one channel per group. Where the paper's text leaves details open (GroupNorm's grouping,
    the convs' biases, which softmax weighs which branch) the official code decides. In a ResNet it goes in the
    residual block ("block"), as its CIFAR ResNet-50 experiments. Gates: ``gates.h`` (B, C, H, 1) and
    ``gates.w`` (B, C, 1, W) of the 1×1 branch, ``gates.channel`` (B·G, 2, c) the two softmaxes, ``gates.spatial``
    (B, G, H, W) the final weights.
    Parameters: (c² + c) + (9c² + c) + 2c = 10c² + 4c, c = C / G (672 at C = 256).
    """

    def __init__(self, channels: int, *, factor: int = 32, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        self.groups = ema_groups(channels, factor)
        c = channels // self.groups
        self.conv1x1 = nn.Conv2d(c, c, 1, **f)
        self.conv3x3 = nn.Conv2d(c, c, 3, padding=1, **f)
        self.gn = nn.GroupNorm(c, c, **f)
        self.gates = nn.ModuleDict(
            {"h": nn.Sigmoid(), "w": nn.Sigmoid(), "channel": nn.Softmax(dim=-1), "spatial": nn.Sigmoid()}
        )

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        G = self.groups
        xg = x.reshape(B * G, C // G, H, W)  # (B·G, c, H, W)
        z = torch.cat([xg.mean(dim=3, keepdim=True), xg.mean(dim=2, keepdim=True).transpose(2, 3)], dim=2)
        z_h, z_w = self.conv1x1(z).split([H, W], dim=2)  # (B·G, c, H, 1), (B·G, c, W, 1)
        g_h = self.gates["h"](z_h.reshape(B, C, H, 1)).reshape(B * G, -1, H, 1)
        g_w = self.gates["w"](z_w.reshape(B, C, 1, W)).reshape(B * G, -1, 1, W)
        x1 = self.gn(xg * g_h * g_w)
        x2 = self.conv3x3(xg)
        pooled = torch.stack([x1.mean(dim=(2, 3)), x2.mean(dim=(2, 3))], dim=1)  # (B·G, 2, c)
        a = self.gates["channel"](pooled)
        # a1 weighs the 3×3 branch's channels, a2 the 1×1 branch's: (B·G, 2, c) × (B·G, c, H·W) each
        w = torch.einsum("nc,ncp->np", a[:, 0], x2.flatten(2)) + torch.einsum("nc,ncp->np", a[:, 1], x1.flatten(2))
        weights = self.gates["spatial"](w.reshape(B, G, H, W))
        return (xg * weights.reshape(B * G, 1, H, W)).reshape(B, C, H, W)
