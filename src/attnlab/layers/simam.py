"""SimAM: a simple, parameter-free attention module (Yang et al.; ICML 2021)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .registry import register_attention


@register_attention(
    "simam",
    category="channel_spatial",
    paper="SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural Networks",
    venue="ICML",
    year=2021,
    url="https://proceedings.mlr.press/v139/yang21o.html",
)
class SimAM(nn.Module):
    """SimAM: weight each neuron by the inverse of its minimal energy, a full 3-D map without parameters.

        e_t* = 4(σ̂² + λ) / ((t − μ̂)² + 2σ̂² + 2λ)                       Eq. 6, per channel over H·W
        out = σ(1 / e_t*) · x                                           Eq. 8
            = σ((t − μ̂)² / (4(σ̂² + λ)) + 1/2) · x

    μ̂ and σ̂² are the mean and variance of the channel over its M = H·W − 1 other neurons, as the official
    code (variance divides by H·W − 1); λ = 1e-4. At 1×1 the variance is undefined (0/0); attnlab divides
    by max(H·W − 1, 1) there, giving σ(1/2) · x.
    """

    def __init__(self, channels: int | None = None, *, e_lambda: float = 1e-4, device=None, dtype=None) -> None:
        super().__init__()  # channels, device, dtype: accepted for the common contract; nothing to build
        if e_lambda <= 0:
            raise ValueError(f"e_lambda: expected a positive number, got {e_lambda}")
        self.e_lambda = e_lambda
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        n = max(x.shape[2] * x.shape[3] - 1, 1)
        d = (x - x.mean(dim=(2, 3), keepdim=True)).square()  # (t − μ̂)²               (B, C, H, W)
        inv = (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.e_lambda)).reciprocal()  # (B, C, 1, 1)
        # d · inv + 1/2 in one pass over the map: one pass fewer than divide, then add
        energy_inv = torch.addcmul(d.new_full((), 0.5), d, inv)
        return x * self.gate(energy_inv)

    def extra_repr(self) -> str:
        return f"e_lambda={self.e_lambda}"
