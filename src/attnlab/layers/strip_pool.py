"""SPNet's strip pooling module, SPM (Hou, Zhang, Cheng, Feng; CVPR 2020): the gate its ResNets carry."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, check_odd, factory_kwargs
from .registry import register_attention


@register_attention(
    "strip_pool",
    category="channel_spatial",
    paper="Strip Pooling: Rethinking Spatial Pooling for Scene Parsing",
    venue="CVPR",
    year=2020,
    url="https://arxiv.org/abs/2003.13328",
)
class StripPooling(nn.Module):
    """Strip pooling module: a row strip and a column strip, each through a 1-D conv, gate every position.

        y^h_ci = 1/W Σ_j x_cij,   y^w_cj = 1/H Σ_i x_cij     strip pooling            (B, C, H, 1), (B, C, 1, W)
        y_cij = ReLU(BN(conv_k×1(y^h))_ci + BN(conv_1×k(y^w))_cj)   expanded to       (B, C, H, W)
        out = x · σ(f(y))                                    f: 1×1 conv C -> C with a bias

    k = 3. As the official code's SPM (Andrew-Qibin/SPNet, models/resnet.py, ``SPBlock``): bias-free 1-D convs
    C -> C, each with a BN, a ReLU on their sum, the 1×1 conv f with a bias; the paper's Eq. writes
    z = x · σ(f(y)) without the BNs and the ReLU. The strips are zero-padded by k // 2, so any H×W keeps its
    size. The official ResNet applies it inside the bottleneck, to the 3×3 conv's output (after its BN and
    ReLU), in the last block of stages 1-3 and every block of stage 4. attnlab's ResNet has no place after
    the 3×3 conv, so it takes the nearest, "after_conv1": in every block, at the inner width, on the first
    conv's BN + ReLU output (a 3×3 conv in a BasicBlock, the 1×1 in a bottleneck). The mixed pooling module
    (models/customize.py, ``StripPooling``; the survey code's strip_pooling_module.py) is SPNet's
    segmentation head, not this plug-in. The weights pass through ``gate`` (B, C, H, W).
    Parameters: 2kC² + 4C (convs, BNs) + C² + C (f).
    """

    def __init__(self, channels: int, *, kernel_size: int = 3, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        check_odd(kernel_size)
        f = factory_kwargs(device, dtype)
        k, pad = kernel_size, kernel_size // 2
        self.conv_h = nn.Conv2d(channels, channels, (k, 1), padding=(pad, 0), bias=False, **f)
        self.bn_h = nn.BatchNorm2d(channels, **f)
        self.conv_w = nn.Conv2d(channels, channels, (1, k), padding=(0, pad), bias=False, **f)
        self.bn_w = nn.BatchNorm2d(channels, **f)
        self.fuse = nn.Conv2d(channels, channels, 1, **f)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        rows = self.bn_h(self.conv_h(x.mean(dim=3, keepdim=True)))  # (B, C, H, 1)
        cols = self.bn_w(self.conv_w(x.mean(dim=2, keepdim=True)))  # (B, C, 1, W)
        return x * self.gate(self.fuse(torch.relu(rows + cols)))  # broadcast to (B, C, H, W)
