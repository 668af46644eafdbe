"""ECA-Net: Efficient Channel Attention (Wang et al.; CVPR 2020)."""

from __future__ import annotations

import math

from torch import Tensor, nn

from ._shared import check_channels, check_odd, factory_kwargs
from .registry import register_attention


def eca_kernel_size(channels: int, gamma: float = 2, b: float = 1) -> int:
    """k = ψ(C) = |log2(C)/γ + b/γ|_odd (Eq. 12): the nearest odd number, as the official code rounds."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


@register_attention(
    "eca",
    category="channel",
    paper="ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
    venue="CVPR",
    year=2020,
    url="https://arxiv.org/abs/1910.03151",
)
class EfficientChannelAttention(nn.Module):
    """ECA: channel attention by a 1-D convolution across the pooled channels, no dimensionality reduction.

        y = GAP(x)                                  (B, C) as a sequence of C values
        w = σ(conv1d_k(y))                          Eq. 10-11, k neighbouring channels interact
        out = w · x

    k is adaptive to C (Eq. 12, γ = 2, b = 1): C = 64 -> 3, 256 -> 5, 512 -> 5, 2048 -> 7. The official
    ``eca_layer`` takes a fixed ``k_size=3`` while the paper's ImageNet models use the adaptive k; attnlab
    follows the paper by default, and ``kernel_size`` fixes k. Parameters: k (no bias).
    """

    def __init__(
        self, channels: int, *, kernel_size: int | None = None, gamma: float = 2, b: float = 1, device=None, dtype=None
    ) -> None:
        super().__init__()
        check_channels(channels)
        k = eca_kernel_size(channels, gamma, b) if kernel_size is None else kernel_size
        check_odd(k)
        self.kernel_size = k
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False, **factory_kwargs(device, dtype))
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        B, C = x.shape[:2]
        y = self.conv(x.mean(dim=(2, 3)).view(B, 1, C))  # (B, 1, C)
        return x * self.gate(y).view(B, C, 1, 1)
