"""Squeeze-and-Excitation (Hu, Shen, Sun; CVPR 2018)."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import ChannelMLP, check_channels, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "se",
    category="channel",
    paper="Squeeze-and-Excitation Networks",
    venue="CVPR",
    year=2018,
    url="https://arxiv.org/abs/1709.01507",
)
class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation: recalibrate channels from their global averages.

        z = GAP(x)                                  squeeze, Eq. 2          (B, C, 1, 1)
        s = σ(W2 δ(W1 z))                           excitation, Eq. 3       (B, C, 1, 1)
        out = s · x                                 scale, Eq. 4            (B, C, H, W)

    W1: C -> C/r, W2: C/r -> C, as 1×1 convolutions with biases (the official Caffe model has them);
    r = 16 (the paper's default). Parameters: 2C²/r + C/r + C.
    """

    def __init__(self, channels: int, *, reduction: float = 16, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        self.fc = ChannelMLP(channels, reduced(channels, reduction), **factory_kwargs(device, dtype))
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.fc(x.mean(dim=(2, 3), keepdim=True)))
