"""EPSANet: the pyramid squeeze attention (PSA) module (Zhang, Zu, Lu, Zou, Meng; ACCV 2022)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import ChannelMLP, check_channels, check_odd, factory_kwargs, largest_groups, reduced
from .registry import register_attention


@register_attention(
    "epsa",
    category="branch",
    paper="EPSANet: An Efficient Pyramid Squeeze Attention Block on Convolutional Neural Network",
    venue="ACCV",
    year=2022,
    url="https://arxiv.org/abs/2105.14447",
)
class PyramidSqueezeAttention(nn.Module):
    """Pyramid squeeze attention: S kernel sizes on C/S channels each, SE weights softmaxed across the S scales.

        F_i = conv_{k_i×k_i, groups G_i}(x)      split and concat: C -> C/S per scale     (B, C/S, H', W')
        Z_i = σ(W_2 δ(W_1 GAP(F_i)))             SEWeight, one module shared by the scales  (B, C/S, 1, 1)
        att_i = softmax_i(Z_i)                   across the S scales                        (B, S, C/S, 1, 1)
        out = Cat[att_i ⊙ F_i]                   the re-weighted scales                     (B, C, H', W')

    S = 4 scales, kernels 3, 5, 7, 9 with groups 1, 4, 8, 16, SE reduction 16: the official PSAModule
    (murufeng/EPSANet, models/epsanet.py; bias-free scale convs) and SEWeightModule (1×1 convs with biases, a
    sigmoid; the softmax then runs over sigmoids). Where the paper writes Cat[Y_0, …, Y_{S-1}], the official code
    concatenates the scales in reverse (the last kernel's channels first), followed here.
    Rules where C does not fit (the official code would fail): ``channels`` must be a multiple of S (else
    ``ValueError``); each group count G_i that does not divide C/S becomes the largest divisor of C/S below it
    (at C = 32: 16 -> 8); the SE width (C/S) // 16 is at least 1.
    A branch module: in a ResNet it replaces the bottleneck's 3×3 conv and takes its ``stride`` (every scale's conv
    strides). ``bn=True`` appends the BN that follows the module in the official EPSABlock (its bn2); ResNet's
    "conv" place, which drops the block's conv2 and bn2, builds it so. The weights pass through ``gate``.
    Parameters: Σ_i k_i²·C·(C/S)/G_i + 2·(C/S)·d + d + C/S, d = max(1, (C/S) // 16), (+ 2C with ``bn``).
    """

    def __init__(
        self,
        channels: int,
        *,
        kernel_sizes: tuple[int, ...] = (3, 5, 7, 9),
        groups: tuple[int, ...] = (1, 4, 8, 16),
        reduction: float = 16,
        stride: int = 1,
        bn: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        kernel_sizes, groups = tuple(kernel_sizes), tuple(groups)
        if not kernel_sizes or len(groups) != len(kernel_sizes):
            raise ValueError(
                f"groups: expected one group count per kernel size ({len(kernel_sizes)}), got {len(groups)}"
            )
        for k in kernel_sizes:
            check_odd(k, "kernel_sizes")
        if any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in groups):
            raise ValueError(f"groups: expected positive ints, got {groups}")
        scales = len(kernel_sizes)
        check_channels(channels, multiple_of=scales)
        check_channels(stride, name="stride")
        f = factory_kwargs(device, dtype)
        split = channels // scales
        self.scales = scales
        self.convs = nn.ModuleList(
            nn.Conv2d(
                channels,
                split,
                k,
                stride=stride,
                padding=k // 2,
                groups=largest_groups(split, g),
                bias=False,
                **f,
            )
            for k, g in zip(kernel_sizes, groups, strict=True)
        )
        self.se = ChannelMLP(split, reduced(split, reduction), **f)
        self.gate = nn.Softmax(dim=1)
        self.bn = nn.BatchNorm2d(channels, **f) if bn else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        feats = torch.stack([conv(x) for conv in self.convs], dim=1)  # (B, S, C/S, H', W')
        B, S, split, H, W = feats.shape
        pooled = feats.mean(dim=(3, 4)).reshape(B * S, split, 1, 1)  # each scale through the one SE
        attn = self.gate(torch.sigmoid(self.se(pooled)).reshape(B, S, split, 1, 1))
        out = (feats * attn).flip(1)  # the official concatenation: last scale first
        return self.bn(out.reshape(B, S * split, H, W))
