"""Coordinate Attention (Hou, Zhou, Feng; CVPR 2021)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "coord",
    category="channel_spatial",
    paper="Coordinate Attention for Efficient Mobile Network Design",
    venue="CVPR",
    year=2021,
    url="https://arxiv.org/abs/2103.02907",
)
class CoordinateAttention(nn.Module):
    """Coordinate attention: channel attention factorized along the two spatial directions.

        z^h = mean over W (B, C, H, 1),  z^w = mean over H (B, C, 1, W)           Eq. 4-5
        f = δ(BN(F1([z^h, z^w])))                    F1: 1×1 conv C -> mip      Eq. 6, δ = h-swish
        g^h = σ(F_h(f^h)),  g^w = σ(F_w(f^w))        1×1 convs mip -> C          Eq. 7-8
        out = x ⊗ g^h ⊗ g^w                                                     Eq. 9

    mip = max(8, C / r) with r = 32, as the official code. Gates: ``gates.h`` (B, C, H, 1), ``gates.w``
    (B, C, 1, W). Parameters: C·mip + mip + 2 mip (BN) + 2(mip·C + C).
    """

    def __init__(self, channels: int, *, reduction: float = 32, min_channels: int = 8, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        mip = reduced(channels, reduction, min_channels)  # the paper's mip = max(8, C / r)
        self.conv1 = nn.Conv2d(channels, mip, 1, **f)
        self.bn1 = nn.BatchNorm2d(mip, **f)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(mip, channels, 1, **f)
        self.conv_w = nn.Conv2d(mip, channels, 1, **f)
        self.gates = nn.ModuleDict({"h": nn.Sigmoid(), "w": nn.Sigmoid()})

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[2:]
        z_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1)
        z_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([z_h, z_w], dim=2))))  # (B, mip, H + W, 1)
        y_h, y_w = y.split([H, W], dim=2)
        g_h = self.gates["h"](self.conv_h(y_h))  # (B, C, H, 1)
        g_w = self.gates["w"](self.conv_w(y_w.transpose(2, 3)))  # (B, C, 1, W)
        return x * g_h * g_w
