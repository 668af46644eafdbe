"""scSE: concurrent spatial and channel squeeze & excitation (Roy, Navab, Wachinger; MICCAI 2018)."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import ChannelMLP, check_channels, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "scse",
    category="channel_spatial",
    paper="Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully Convolutional Networks",
    venue="MICCAI",
    year=2018,
    url="https://arxiv.org/abs/1803.02579",
)
class SCSE(nn.Module):
    """scSE: a channel SE gate (cSE) and a spatial SE gate (sSE) in parallel, their outputs added.

        x_cSE = σ(W2 δ(W1 GAP(x))) ⊗ x              cSE, W1: C -> C/r       (B, C, 1, 1) gate
        x_sSE = σ(W_s ⋆ x) ⊗ x                      sSE, W_s: 1×1 conv C -> 1 (B, 1, H, W) gate
        out = x_cSE + x_sSE                         the paper's aggregation (element-wise addition)

    r = 2, the paper's choice for its segmentation networks. Gates: ``gates.channel``, ``gates.spatial``.
    Parameters: 2C²/r + C/r + C (cSE) + C + 1 (sSE).
    """

    def __init__(self, channels: int, *, reduction: float = 2, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        self.cse = ChannelMLP(channels, reduced(channels, reduction), **f)
        self.sse = nn.Conv2d(channels, 1, 1, **f)
        self.gates = nn.ModuleDict({"channel": nn.Sigmoid(), "spatial": nn.Sigmoid()})

    def forward(self, x: Tensor) -> Tensor:
        channel = self.gates["channel"](self.cse(x.mean(dim=(2, 3), keepdim=True)))  # (B, C, 1, 1)
        spatial = self.gates["spatial"](self.sse(x))  # (B, 1, H, W)
        return x * channel + x * spatial
