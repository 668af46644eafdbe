"""The additive attention gate of Attention U-Net (Oktay et al., "Attention U-Net: Learning Where to Look for
the Pancreas", MIDL 2018): a skip connection's features x, gated by the coarser decoder features g.

Not a zoo module (it takes two inputs, x and g); the U-Nets of ``models/unet.py`` put one on every skip.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs

__all__ = ["AttentionGate"]


class _ResampledSigmoid(nn.Module):
    """α = σ₂(logits), resampled bilinearly to ``size``: the gate whose output forward hooks capture."""

    def forward(self, logits: Tensor, size: tuple[int, int]) -> Tensor:
        alpha = logits.sigmoid()
        return alpha if alpha.shape[-2:] == size else F.interpolate(alpha, size=size, mode="bilinear")


class AttentionGate(nn.Module):
    """Additive attention gate, Eq. 1-2 of the paper:

        q_att = ψᵀ σ₁(W_xᵀ x + W_gᵀ g + b_g) + b_ψ          σ₁ = ReLU                       (B, 1, h, w)
        α = σ₂(q_att),  x̂ = α · x                            σ₂ = sigmoid, α in (0, 1)      (B, C_x, H, W)

    As the official code (``GridAttentionBlock2D``, mode "concatenation"), which the paper leaves open here:
    W_x is a 2×2 convolution with stride 2 and no bias, so x is compared with g on g's grid (h, w) = (H/2, W/2);
    W_g is a 1×1 convolution with the bias b_g, its output resampled to that grid when sizes differ; α is
    resampled bilinearly back to x's size (H, W); the gated features pass through an output transform
    W = 1×1 conv + BN. The intermediate width F_int defaults to C_x / 2, as the official code.

    Args:
        channels: C_x, channels of the skip features x.
        gating_channels: C_g, channels of the gating signal g (the coarser level).
        inter_channels: F_int (default C_x / 2, at least 1).

    ``forward(x, g)`` returns x̂ after W, of x's shape; α passes through the submodule ``gate`` (B, 1, H, W).
    Parameters: 4·C_x·F_int + C_g·F_int + F_int + F_int + 1 + C_x² + C_x + 2·C_x.
    """

    def __init__(
        self, channels: int, gating_channels: int, *, inter_channels: int | None = None, device=None, dtype=None
    ) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(gating_channels, name="gating_channels")
        inter = (
            max(1, channels // 2) if inter_channels is None else check_channels(inter_channels, name="inter_channels")
        )
        f = factory_kwargs(device, dtype)
        self.theta = nn.Conv2d(channels, inter, 2, stride=2, bias=False, **f)  # W_x
        self.phi = nn.Conv2d(gating_channels, inter, 1, **f)  # W_g, b_g
        self.psi = nn.Conv2d(inter, 1, 1, **f)  # ψ, b_ψ
        self.gate = _ResampledSigmoid()
        self.out = nn.Sequential(nn.Conv2d(channels, channels, 1, **f), nn.BatchNorm2d(channels, **f))  # W

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        theta = self.theta(x)  # (B, F_int, H/2, W/2)
        phi = self.phi(g)  # (B, F_int, h_g, w_g)
        if phi.shape[-2:] != theta.shape[-2:]:
            phi = F.interpolate(phi, size=theta.shape[-2:], mode="bilinear")
        alpha = self.gate(self.psi(F.relu(theta + phi)), x.shape[-2:])  # (B, 1, H, W)
        return self.out(x * alpha)
