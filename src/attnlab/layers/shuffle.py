"""Shuffle attention (Zhang & Yang; ICASSP 2021): per group, a channel gate on one half, a spatial gate on the other,
then a channel shuffle."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, largest_groups
from .registry import register_attention

__all__ = ["ShuffleAttention"]


@register_attention(
    "shuffle",
    category="channel_spatial",
    paper="SA-Net: Shuffle Attention for Deep Convolutional Neural Networks",
    venue="ICASSP",
    year=2021,
    url="https://arxiv.org/abs/2102.00240",
)
class ShuffleAttention(nn.Module):
    """Shuffle attention: G groups, each split in two halves of c = C/(2G) channels.

        x -> (B, G, 2, c, H, W): halves x_k1, x_k2 of each group k
        x'_k1 = σ(W_1 GAP(x_k1) + b_1) · x_k1               channel gate               (B, G, c, 1, 1)
        x'_k2 = σ(W_2 GN(x_k2) + b_2) · x_k2                spatial gate               (B, G, c, H, W)
        out = shuffle_2([x'_k1; x'_k2] for k = 1…G)          channel shuffle of 2 groups (B, C, H, W)

    W_1, b_1, W_2, b_2 (c each) are shared by the G groups, as is the GroupNorm GN(c, c) (normalizes each channel
    over H×W, eps 1e-5, affine); W start at 0 and b at 1, as the official sa_layer (github.com/wofmanaf/SA-Net).
    G = 64 (the official default); where 2G does not divide C (C = 64: 32; C = 32: 16), G is the largest
    value below it with 2G | C (for an explicit ``groups`` too). Gates: ``gates.channel`` (B, C/2, 1, 1),
    ``gates.spatial`` (B, C/2, H, W), the halves of all groups in order. Parameters: 6c = 3C/G.
    """

    def __init__(self, channels: int, *, groups: int = 64, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels, multiple_of=2)
        self.groups = largest_groups(channels, groups, per_group=2)
        c = channels // (2 * self.groups)
        f = factory_kwargs(device, dtype)
        self.cweight = nn.Parameter(torch.zeros(1, c, 1, 1, **f))
        self.cbias = nn.Parameter(torch.ones(1, c, 1, 1, **f))
        self.sweight = nn.Parameter(torch.zeros(1, c, 1, 1, **f))
        self.sbias = nn.Parameter(torch.ones(1, c, 1, 1, **f))
        self.gn = nn.GroupNorm(c, c, **f)
        self.gates = nn.ModuleDict({"channel": nn.Sigmoid(), "spatial": nn.Sigmoid()})

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        G = self.groups
        c = C // (2 * G)
        halves = x.reshape(B, G, 2, c, H, W)
        x1, x2 = halves[:, :, 0], halves[:, :, 1]  # (B, G, c, H, W)
        pooled = x1.mean(dim=(-2, -1), keepdim=True)  # (B, G, c, 1, 1)
        channel = self.gates["channel"]((self.cweight * pooled + self.cbias).reshape(B, G * c, 1, 1))
        normed = self.gn(x2.reshape(B * G, c, H, W)).reshape(B, G, c, H, W)
        spatial = self.gates["spatial"]((self.sweight * normed + self.sbias).reshape(B, G * c, H, W))
        out = torch.stack([x1 * channel.reshape(B, G, c, 1, 1), x2 * spatial.reshape(B, G, c, H, W)], dim=2)
        # out (B, G, 2, c, H, W) is the official concatenation; shuffle_2: (B, 2, C/2) -> (B, C/2, 2)
        return out.reshape(B, 2, C // 2, H, W).transpose(1, 2).reshape(B, C, H, W)
