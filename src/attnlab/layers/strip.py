"""timm's minimal strip attention (``StripAttn``), the ``strip`` of its attention factory: the strip pooling of
SPNet (Hou, Zhang, Cheng, Feng; CVPR 2020) reduced to a gate. timm has no paper for the module."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import check_channels, check_odd, depthwise_strips, factory_kwargs
from .registry import register_attention


@register_attention(
    "strip",
    category="channel_spatial",
    paper="Strip Pooling: Rethinking Spatial Pooling for Scene Parsing",
    venue="CVPR",
    year=2020,
    url="https://arxiv.org/abs/2003.13328",
)
class StripAttention(nn.Module):
    """Strip attention: a row and a column average, each refined by a 1-D depth-wise conv, summed into one gate.

        z^h = mean over W (B, C, H, 1),  z^w = mean over H (B, C, 1, W)
        out = x · σ(conv_h(z^h) + conv_w(z^w))       conv_h: depth-wise k×1, conv_w: 1×k, no bias; (B, C, H, W)

    Defaults are timm's: k = 3, bias-free depth-wise convs (timm's use_conv=True). The paper's strip pooling module
    (attnlab's ``strip_pool``; SPNet's official code, houqb/SPNet models/resnet.py ``SPBlock``) has full C -> C 1-D
    convs with biases, each followed by a BN, a ReLU on their sum and a 1×1 conv f before the sigmoid,
    x · σ(f(ReLU(y^h + y^w))); timm keeps only the strips, their 1-D convs and the sigmoid. The strips are padded
    with k // 2 zeros at each end, so any H×W keeps its size. The weights pass through ``gate`` (B, C, H, W).
    Parameters: 2kC.
    """

    def __init__(self, channels: int, *, kernel_size: int = 3, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        check_odd(kernel_size)
        f = factory_kwargs(device, dtype)
        self.conv_h, self.conv_w = depthwise_strips(channels, kernel_size, **f)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        z_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1)
        z_w = x.mean(dim=2, keepdim=True)  # (B, C, 1, W)
        return x * self.gate(self.conv_h(z_h) + self.conv_w(z_w))
