"""Effective Squeeze-Excitation (eSE; Lee & Park, CenterMask, CVPR 2020)."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


@register_attention(
    "ese",
    category="channel",
    paper="CenterMask: Real-Time Anchor-Free Instance Segmentation",
    venue="CVPR",
    year=2020,
    url="https://arxiv.org/abs/1911.06667",
)
class EffectiveSqueezeExcite(nn.Module):
    """eSE: SE with one fully-connected layer of C channels, no reduction, and a hard sigmoid.

        z = GAP(x)                                  (B, C, 1, 1)
        A = hσ(W_C z + b)                           Eq. 2: one FC C -> C keeps the channel information
        out = A · x                                 SE's two FCs (C -> C/r -> C) lose it, the paper argues

    hσ(t) = ReLU6(t + 3) / 6, the official code's ``Hsigmoid`` (VoVNet-v2's ``eSEModule``, youngwanLEE/CenterMask,
    ``maskrcnn_benchmark/modeling/backbone/vovnet.py``). Parameters: C² + C (the FC is a 1×1 conv with a bias).
    """

    def __init__(self, channels: int, *, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        self.fc = nn.Conv2d(channels, channels, 1, **factory_kwargs(device, dtype))
        self.gate = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.fc(x.mean(dim=(2, 3), keepdim=True)))
