"""SRM: Style-based Recalibration Module (Lee, Kim, Nam; ICCV 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


@register_attention(
    "srm",
    category="channel",
    paper="SRM: A Style-based Recalibration Module for Convolutional Neural Networks",
    venue="ICCV",
    year=2019,
    url="https://arxiv.org/abs/1903.10829",
)
class StyleRecalibration(nn.Module):
    """SRM: recalibrate channels from their style, the mean and standard deviation of each feature map.

        t_c = [μ_c, σ_c]                                style pooling, Eq. 1-2        (B, C, 2)
        z_c = w_c · t_c                                 channel-wise FC (CFC), Eq. 3  (B, C)
        g_c = σ(BN(z_c))                                Eq. 4-5
        out = g · x

    σ_c is the population standard deviation over H·W, as the paper's Eq. 2 writes it (the official
    code's unbiased variance is undefined at 1×1); ε = 1e-5 inside the root. Parameters: 2C (CFC) + 2C (BN).
    """

    def __init__(self, channels: int, *, eps: float = 1e-5, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        self.eps = eps
        self.cfc = nn.Parameter(torch.zeros(channels, 2, **f))  # the official initialization
        self.bn = nn.BatchNorm2d(channels, **f)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        var, mean = torch.var_mean(x, dim=(2, 3), correction=0)  # (B, C)
        style = torch.stack([mean, (var + self.eps).sqrt()], dim=-1)  # (B, C, 2)
        z = (style * self.cfc).sum(dim=-1)[:, :, None, None]  # (B, C, 1, 1)
        return x * self.gate(self.bn(z))
