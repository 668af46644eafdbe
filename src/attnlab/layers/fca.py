"""FcaNet: frequency channel attention (Qin et al.; ICCV 2021)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, reduced
from .registry import register_attention

# The "top16" frequencies of the official code, on a 7×7 grid: (u, v) pairs, best first.
TOP16_U = (0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2)
TOP16_V = (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2)


def dct_basis(freq: int, size: int) -> Tensor:
    """B_freq(i) = cos(π · freq · (i + ½) / size), orthonormal (÷√size, ×√2 for freq > 0)."""
    i = torch.arange(size, dtype=torch.float64)
    basis = torch.cos(math.pi * freq * (i + 0.5) / size) / math.sqrt(size)
    return basis * math.sqrt(2) if freq else basis


def dct_filters(channels: int, size: int, num_freq: int) -> Tensor:
    """(C, size, size): channel c pools with the 2-D DCT basis of frequency pair ``c · n // C``."""
    scale = size // 7
    filters = torch.empty(num_freq, size, size, dtype=torch.float64)
    for j, (u, v) in enumerate(zip(TOP16_U[:num_freq], TOP16_V[:num_freq], strict=True)):
        filters[j] = torch.outer(dct_basis(u * scale, size), dct_basis(v * scale, size))
    part = torch.arange(channels) * num_freq // channels
    return filters[part]


@register_attention(
    "fca",
    category="channel",
    paper="FcaNet: Frequency Channel Attention Networks",
    venue="ICCV",
    year=2021,
    url="https://arxiv.org/abs/2012.11879",
)
class FrequencyChannelAttention(nn.Module):
    """FcaNet's multi-spectral channel attention: SE with global average pooling generalized to DCT bases.

        x is split into n channel groups; group i is pooled by the 2-D DCT basis of frequency (u_i, v_i):
        Freq_c = Σ_hw x_c,h,w · B_{u_i}(h) B_{v_i}(w)                   Eq. 6-7            (B, C)
        out = σ(W2 δ(W1 Freq)) · x                                      Eq. 8

    Defaults follow the official code: the "top16" frequencies selected on a 7×7 grid (n = 16), inputs
    average-pooled to ``dct_size`` × ``dct_size`` first when they differ, bias-free W1 (C -> C/16) and W2.
    (The (0, 0) basis is global average pooling: with n = 1 the module is SE without biases.) When C is
    not a multiple of n the groups differ in size by one channel. Parameters: 2C²/r.
    """

    def __init__(
        self, channels: int, *, reduction: float = 16, dct_size: int = 7, num_freq: int = 16, device=None, dtype=None
    ) -> None:
        super().__init__()
        check_channels(channels)
        if dct_size < 7 or dct_size % 7:
            raise ValueError(f"dct_size: expected a multiple of 7 (the frequency grid), got {dct_size}")
        if not 1 <= num_freq <= len(TOP16_U):
            raise ValueError(f"num_freq: expected 1 to {len(TOP16_U)}, got {num_freq}")
        f = factory_kwargs(device, dtype)
        self.dct_size = dct_size
        weight = dct_filters(channels, dct_size, num_freq)
        self.register_buffer("dct_weight", weight.to(device=device, dtype=dtype or torch.get_default_dtype()))
        hidden = reduced(channels, reduction)
        self.fc1 = nn.Linear(channels, hidden, bias=False, **f)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, channels, bias=False, **f)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        pooled = x if H == W == self.dct_size else F.adaptive_avg_pool2d(x, self.dct_size)
        freq = (pooled * self.dct_weight).sum(dim=(2, 3))  # (B, C)
        return x * self.gate(self.fc2(self.act(self.fc1(freq)))).view(B, C, 1, 1)
