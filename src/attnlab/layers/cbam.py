"""CBAM: Convolutional Block Attention Module (Woo, Park, Lee, Kweon; ECCV 2018)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import ChannelMLP, SpatialConvGate, check_channels, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "cbam",
    category="channel_spatial",
    paper="CBAM: Convolutional Block Attention Module",
    venue="ECCV",
    year=2018,
    url="https://arxiv.org/abs/1807.06521",
)
class CBAM(nn.Module):
    """CBAM: a channel gate from average- and max-pooled descriptors, then a spatial gate; sequential.

        M_c = σ(MLP(AvgPool(x)) + MLP(MaxPool(x)))             Eq. 2, shared MLP C -> C/r -> C  (B, C, 1, 1)
        x' = M_c ⊗ x
        M_s = σ(f^{7×7}([AvgPool_c(x'); MaxPool_c(x')]))        Eq. 3                            (B, 1, H, W)
        out = M_s ⊗ x'                                          Eq. 1

    r = 16, 7×7 kernel, both poolings (the paper's best, Tables 1-2). The official code puts a BatchNorm
    after the 7×7 conv (bias-free) and stacks [max; mean]; attnlab follows the code. No residual: in a
    ResNet the block owns it. Gates: ``channel_gate.gate`` (B, C, 1, 1), ``spatial_gate.gate`` (B, 1, H, W).
    Parameters: 2C²/r + C/r + C (MLP) + 2·7·7 + 2 (conv, BN).
    """

    def __init__(self, channels: int, *, reduction: float = 16, kernel_size: int = 7, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        self.channel_gate = ChannelGate(channels, reduction, **f)
        self.spatial_gate = SpatialConvGate(kernel_size, **f)

    def forward(self, x: Tensor) -> Tensor:
        x = x * self.channel_gate(x)
        return x * self.spatial_gate(x)


class ChannelGate(nn.Module):
    """CBAM's channel attention map M_c (B, C, 1, 1)."""

    def __init__(self, channels: int, reduction: float = 16, *, device=None, dtype=None) -> None:
        super().__init__()
        self.mlp = ChannelMLP(channels, reduced(channels, reduction), device=device, dtype=dtype)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        # Max pooling with indices, as the official code (F.max_pool2d over the whole map): its backward
        # scatters to the argmax, cheaper than amax's mask-and-divide backward.
        return self.gate(self.mlp(x.mean(dim=(2, 3), keepdim=True)) + self.mlp(F.adaptive_max_pool2d(x, 1)))
