"""Triplet Attention (Misra, Nalamada, Arasanipalai, Hou; WACV 2021)."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import SpatialConvGate, factory_kwargs
from .registry import register_attention


@register_attention(
    "triplet",
    category="channel_spatial",
    paper="Rotate to Attend: Convolutional Triplet Attention Module",
    venue="WACV",
    year=2021,
    url="https://arxiv.org/abs/2010.03045",
)
class TripletAttention(nn.Module):
    """Triplet attention: three branches capture the (C, W), (H, C) and (H, W) interactions by rotation.

        branch d: rotate x so that dimension d is first, Z-pool it ([max; mean] over it -> 2 maps),
                  7×7 conv + BN, σ -> a gate over the other two dimensions, rotate back
        out = ⅓ (x ⊗ g_cw + x ⊗ g_hc + x ⊗ g_hw)                         Eq. 4 (averaged branches)

    7×7 kernels, bias-free convs with BN, as the official code. Gates: ``cw.gate`` (B, 1, C, W),
    ``hc.gate`` (B, 1, H, C), ``hw.gate`` (B, 1, H, W) (the last is CBAM's spatial map).
    Parameters: 3 (2·k² + 2).
    """

    def __init__(
        self, channels: int | None = None, *, kernel_size: int = 7, no_spatial: bool = False, device=None, dtype=None
    ) -> None:
        super().__init__()  # channels: accepted for the common contract; the module is channel-agnostic
        f = factory_kwargs(device, dtype)
        self.cw = SpatialConvGate(kernel_size, **f)  # pools over H
        self.hc = SpatialConvGate(kernel_size, **f)  # pools over W
        self.hw = None if no_spatial else SpatialConvGate(kernel_size, **f)  # pools over C

    def forward(self, x: Tensor) -> Tensor:
        g_cw = self.cw(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)  # (B, 1, C, W) -> (B, C, 1, W)
        g_hc = self.hc(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)  # (B, 1, H, C) -> (B, C, H, 1)
        # The average's division on the small gates: one full-size pass fewer, forward and backward.
        if self.hw is None:
            return x * (g_cw / 2 + g_hc / 2)
        return x * (g_cw / 3 + g_hc / 3 + self.hw(x) / 3)
