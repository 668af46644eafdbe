"""SKNet: selective kernel convolution (Li, Wang, Hu, Yang; CVPR 2019)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "sk",
    category="branch",
    paper="Selective Kernel Networks",
    venue="CVPR",
    year=2019,
    url="https://arxiv.org/abs/1903.06586",
)
class SelectiveKernel(nn.Module):
    """Selective kernel convolution: branches with different receptive fields, mixed by a softmax attention.

        U_m = ReLU(BN(conv_m(x)))      split: 3×3 conv and 3×3 conv with dilation 2 (the paper's 5×5)
        s = GAP(Σ_m U_m)               fuse, Eq. 1-2                                  (B, C_out, 1, 1)
        z = ReLU(BN(W_z s))            W_z: C_out -> d = max(C_out / r, L), Eq. 3
        a_m = softmax_m(W_m z)         select, Eq. 5: one weight per branch and channel (B, M, C_out, 1, 1)
        out = Σ_m a_m U_m              Eq. 6

    M = 2, G = 32 groups, r = 16, L = 32: the paper's SKNet-50, built on ResNeXt (the groups are reduced to
    gcd(32, C) when C is not a multiple of 32). A branch module: in a ResNet it replaces the block's 3×3
    convolution, so it takes ``out_channels`` and ``stride``; there ``create_model`` builds it with
    ``groups=1``, the groups of the convolution it replaces, so SK-ResNet keeps ResNet's width.
    The weights pass through ``gate`` (softmax over the branches).
    Parameters: Σ_m 9·C·C_out/G + 2C_out (convs, BNs) + C_out·d + 2d + M·d·C_out.
    """

    def __init__(
        self,
        channels: int,
        *,
        out_channels: int | None = None,
        stride: int = 1,
        num_branches: int = 2,
        groups: int = 32,
        reduction: float = 16,
        min_channels: int = 32,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        out = channels if out_channels is None else check_channels(out_channels, name="out_channels")
        if num_branches < 1:
            raise ValueError(f"num_branches: expected >= 1, got {num_branches}")
        f = factory_kwargs(device, dtype)
        g = math.gcd(math.gcd(groups, channels), out)
        self.num_branches = num_branches
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, out, 3, stride=stride, padding=1 + m, dilation=1 + m, groups=g, bias=False, **f),
                nn.BatchNorm2d(out, **f),
                nn.ReLU(),
            )
            for m in range(num_branches)
        )
        d = reduced(out, reduction, min_channels)  # the paper's d = max(C/r, L), L = 32
        self.fc = nn.Sequential(nn.Conv2d(out, d, 1, bias=False, **f), nn.BatchNorm2d(d, **f), nn.ReLU())
        self.fcs = nn.Conv2d(d, out * num_branches, 1, bias=False, **f)
        self.gate = nn.Softmax(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        feats = torch.stack([branch(x) for branch in self.branches], dim=1)  # (B, M, C_out, H, W)
        B, M, C = feats.shape[:3]
        z = self.fc(feats.sum(dim=1).mean(dim=(2, 3), keepdim=True))  # (B, d, 1, 1)
        attn = self.gate(self.fcs(z).view(B, M, C, 1, 1))
        return (feats * attn).sum(dim=1)
