"""Gather-Excite (Hu, Shen, Albanie, Sun, Vedaldi; NeurIPS 2018)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import ChannelMLP, check_channels, factory_kwargs, reduced
from .registry import register_attention


def _strided_gather(channels: int, extent: int, f: dict) -> nn.Sequential:
    """log2(extent) depthwise 3×3 stride-2 convs with BN (ReLU between): the paper's learned gather ξ_G."""
    layers: list[nn.Module] = []
    for i in range(int(math.log2(extent))):
        if i:
            layers.append(nn.ReLU())
        layers += [
            nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=channels, bias=False, **f),
            nn.BatchNorm2d(channels, **f),
        ]
    return nn.Sequential(*layers)


@register_attention(
    "ge",
    category="channel",
    paper="Gather-Excite: Exploiting Feature Context in Convolutional Neural Networks",
    venue="NeurIPS",
    year=2018,
    url="https://arxiv.org/abs/1810.12348",
)
class GatherExcite(nn.Module):
    """Gather-Excite: gather context over a spatial extent, then excite (gate) every position with it.

        g = ξ_G(x)          gather: pool each channel over an extent e                (B, C, ⌈H/e⌉, ⌈W/e⌉)
        out = x · σ(interp(ξ_E(g)))   excite: nearest-neighbour upsampling back to H × W, Eq. 1-2

    The paper's variants: GE-θ⁻ (``extra_params=False``: average pooling with kernel 2e − 1, stride e;
    e = 0 is global), GE-θ (``extra_params=True``: log2(e) strided depth-wise 3×3 convs with BN), and
    GE-θ+ (``use_mlp=True``: θ followed by an SE-style 1×1 MLP with reduction 16). Default: GE-θ+ with
    e = 8. The paper's best GE-θ+ uses a global learned gather, a depth-wise conv as large as the feature
    map, which fixes the input size; e = 8 keeps the module usable at any size (``extent=0`` gives a global
    parameter-free gather). Parameters (default): 3·9C + 2·3C (gather) + 2C²/16 + C/16 + C (MLP).
    """

    def __init__(
        self,
        channels: int,
        *,
        extent: int = 8,
        extra_params: bool = True,
        use_mlp: bool = True,
        reduction: float = 16,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        if extent < 0 or (extent and extent & (extent - 1)):
            raise ValueError(f"extent: expected 0 (global) or a power of 2, got {extent}")
        if extent in (0, 1) and extra_params:
            raise ValueError(
                f"extra_params=True: needs extent >= 2 (a learned global gather fixes the input "
                f"size), got extent={extent}"
            )
        f = factory_kwargs(device, dtype)
        self.extent = extent
        self.gather = _strided_gather(channels, extent, f) if extra_params else None
        self.mlp = ChannelMLP(channels, reduced(channels, reduction), **f) if use_mlp else nn.Identity()
        self.gate = nn.Sigmoid()

    def _gather(self, x: Tensor) -> Tensor:
        if self.gather is not None:
            return self.gather(x)
        if self.extent == 0:
            return x.mean(dim=(2, 3), keepdim=True)
        e = self.extent
        return F.avg_pool2d(x, 2 * e - 1, stride=e, padding=e - 1, count_include_pad=False)

    def forward(self, x: Tensor) -> Tensor:
        g = self.mlp(self._gather(x))
        if g.shape[-2:] != x.shape[-2:]:
            g = F.interpolate(g, size=x.shape[-2:], mode="nearest")
        return x * self.gate(g)
