"""Spatial group-wise enhance (Li, Hu, Yang; arXiv 2019): per channel group, a spatial gate from each position's
similarity to the group's global descriptor."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, largest_groups
from .registry import register_attention

__all__ = ["SpatialGroupEnhance"]

EPS = 1e-5  # added to the standard deviation, as the official code


@register_attention(
    "sge",
    category="spatial",
    paper="Spatial Group-wise Enhance: Improving Semantic Feature Learning in Convolutional Networks",
    venue="arXiv",
    year=2019,
    url="https://arxiv.org/abs/1905.09646",
)
class SpatialGroupEnhance(nn.Module):
    """SGE: G groups of C/G channels; in each, the positions that resemble the group's mean feature are enhanced.

        x -> (B, G, C/G, H, W): group k has a feature x_i ∈ R^{C/G} at each position i
        g = (1/N) Σ_i x_i                                   the group's global descriptor         (B, G, C/G)
        c_i = g · x_i                                       similarity                             (B, G, H, W)
        ĉ_i = (c_i − μ_c) / (σ_c + ε)                       over the N = H·W positions, ε = 1e-5
        a_i = γ ĉ_i + β                                     one γ, β per group (G each)
        out_i = σ(a_i) · x_i                                the gate                                (B, C, H, W)

    σ_c is the unbiased standard deviation (the official ``Tensor.std``). At N = 1 it is undefined (the official
    gives NaN): there c − μ_c = 0 and ĉ is taken as 0, the limit of any N, so a 1×1 map gets σ(β) · x.
    γ = 0 and β = 1 at the start, as the official (github.com/implus/PytorchInsight, resnet_sge.py). G = 64 (the
    official default); where G does not divide C (C = 32: 32), G is the largest divisor of C below it (for an
    explicit ``groups`` too). The gate ``gate`` sees a (B, G, H, W): one spatial map per group. Parameters: 2G.
    """

    def __init__(self, channels: int, *, groups: int = 64, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        self.groups = largest_groups(channels, groups)
        f = factory_kwargs(device, dtype)
        self.weight = nn.Parameter(torch.zeros(1, self.groups, 1, 1, **f))
        self.bias = nn.Parameter(torch.ones(1, self.groups, 1, 1, **f))
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        G = self.groups
        xg = x.reshape(B, G, C // G, H, W)
        sim = (xg * xg.mean(dim=(-2, -1), keepdim=True)).sum(dim=2)  # (B, G, H, W): g · x_i
        t = sim - sim.mean(dim=(-2, -1), keepdim=True)
        if H * W > 1:
            t = t / (t.std(dim=(-2, -1), keepdim=True) + EPS)
        a = self.gate(self.weight * t + self.bias)  # (B, G, H, W)
        return (xg * a.unsqueeze(2)).reshape(B, C, H, W)
