"""Gated Channel Transformation (Yang et al.; CVPR 2020)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


@register_attention(
    "gct",
    category="channel",
    paper="Gated Channel Transformation for Visual Recognition",
    venue="CVPR",
    year=2020,
    url="https://arxiv.org/abs/1909.11519",
)
class GatedChannelTransformation(nn.Module):
    """GCT: global context embedding, channel normalization, and a tanh gate.

        s_c = α_c ‖x_c‖₂ = α_c (Σ_hw x_c² + ε)^½                         Eq. 1
        ŝ_c = √C · s_c / (Σ_c s_c² + ε)^½  = s_c / (mean_c s_c² + ε)^½    Eq. 2
        out = x · (1 + tanh(γ_c ŝ_c + β_c))                             Eq. 3

    The "1 +" is the paper's own: at γ = β = 0 (their initialization) the module is the identity.
    ε = 1e-5, the ℓ2 mode and α = 1 initialization of the official code. Parameters: 3C.
    """

    def __init__(self, channels: int, *, eps: float = 1e-5, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        self.eps = eps
        self.alpha = nn.Parameter(torch.ones(1, channels, 1, 1, **f))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1, **f))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1, **f))
        self.gate = nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        embedding = (x.square().sum(dim=(2, 3), keepdim=True) + self.eps).sqrt() * self.alpha  # (B, C, 1, 1)
        norm = self.gamma / (embedding.square().mean(dim=1, keepdim=True) + self.eps).sqrt()
        return x * (1.0 + self.gate(embedding * norm + self.beta))
