"""Efficient Local Attention (Xu, Wan; arXiv 2024) as timm's ``EfficientLocalAttn``, the ``ela`` of its attention
factory."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import check_channels, check_odd, depthwise_strips, factory_kwargs
from .registry import register_attention


@register_attention(
    "ela",
    category="channel_spatial",
    paper="ELA: Efficient Local Attention for Deep Convolutional Neural Networks",
    venue="arXiv",
    year=2024,
    url="https://arxiv.org/abs/2403.01123",
)
class EfficientLocalAttention(nn.Module):
    """Efficient local attention: coordinate attention without a channel bottleneck, a 1-D depth-wise conv per axis.

        z^h = mean over W (B, C, H, 1),  z^w = mean over H (B, C, 1, W)
        g^h = σ(SiLU(GN_h(conv_h(z^h))))  (B, C, H, 1)     conv_h: depth-wise k×1, no bias
        g^w = σ(SiLU(GN_w(conv_w(z^w))))  (B, C, 1, W)     conv_w: depth-wise 1×k, no bias
        out = x · g^h · g^w

    Defaults are timm's: k = 7, a separate conv and GroupNorm per axis, GroupNorm with one group (timm's
    GroupNorm1, eps 1e-5: any C divides), SiLU before the sigmoid. The paper's published code (class
    ELA(in_channels, phi); no official repository found) differs: one conv and one GroupNorm shared by both axes,
    g = σ(GN(conv(z))) without SiLU, and four settings of (k, conv groups, GN groups): ELA-T (5, C, 32),
    ELA-B (7, C, 16), ELA-S (5, C/8, 16), ELA-L (7, C/8, 16); at C = 256 ELA-B has 7C + 2C = 2,304 parameters,
    timm's 4,608. The strips are padded with k // 2 zeros at each end, so any H×W keeps its size. Gates:
    ``gates.h`` (B, C, H, 1), ``gates.w`` (B, C, 1, W). Parameters: 2kC + 4C (two convs, two GroupNorms).
    """

    def __init__(self, channels: int, *, kernel_size: int = 7, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        check_odd(kernel_size)
        f = factory_kwargs(device, dtype)
        self.conv_h, self.conv_w = depthwise_strips(channels, kernel_size, **f)
        self.norm_h = nn.GroupNorm(1, channels, **f)
        self.norm_w = nn.GroupNorm(1, channels, **f)
        self.act = nn.SiLU()
        self.gates = nn.ModuleDict({"h": nn.Sigmoid(), "w": nn.Sigmoid()})

    def forward(self, x: Tensor) -> Tensor:
        z_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1)
        z_w = x.mean(dim=2, keepdim=True)  # (B, C, 1, W)
        g_h = self.gates["h"](self.act(self.norm_h(self.conv_h(z_h))))
        g_w = self.gates["w"](self.act(self.norm_w(self.conv_w(z_w))))
        return x * g_h * g_w
