"""CCNet: criss-cross attention (Huang et al.; ICCV 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "cc",
    category="spatial",
    paper="CCNet: Criss-Cross Attention for Semantic Segmentation",
    venue="ICCV",
    year=2019,
    url="https://arxiv.org/abs/1811.11721",
)
class CrissCrossAttention(nn.Module):
    """Criss-cross attention: each position attends to the positions in its row and its column.

        d_i,u = Q_u · Ω_i,u     Ω_u: the H + W − 1 keys in the row and column of u    Eq. 1 (affinity)
        A = softmax over those H + W − 1 keys                                          (B, H, W, H + W)
        H'_u = γ Σ_i A_i,u Φ_i,u + H_u                                                 Eq. 2, own residual

    Q, K: 1×1 convs C -> C/8; V: C -> C; γ starts at 0. As in the official code, the position itself
    is counted once (masked out of the column). ``recurrence`` = R applications with shared weights
    (RCCA); the paper's R = 2 lets every position reach every other. The weights (B, H, W, H + W) pass
    through ``gate`` as (B, H·W, H + W). Parameters: 2(C·C/8 + C/8) + C² + C + 1.
    """

    def __init__(self, channels: int, *, reduction: float = 8, recurrence: int = 2, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        if recurrence < 1:
            raise ValueError(f"recurrence: expected >= 1, got {recurrence}")
        f = factory_kwargs(device, dtype)
        hidden = reduced(channels, reduction)
        self.recurrence = recurrence
        self.query = nn.Conv2d(channels, hidden, 1, **f)
        self.key = nn.Conv2d(channels, hidden, 1, **f)
        self.value = nn.Conv2d(channels, channels, 1, **f)
        self.gamma = nn.Parameter(torch.zeros(1, **f))
        self.gate = nn.Softmax(dim=-1)

    def _cca(self, x: Tensor) -> Tensor:
        H = x.shape[2]
        q, k, v = self.query(x), self.key(x), self.value(x)
        energy_h = torch.einsum("bchw,bckw->bhwk", q, k)  # (B, H, W, H): column keys
        idx = torch.arange(H, device=x.device)
        self_pos = (idx[:, None] == idx[None, :]).view(H, 1, H)  # the diagonal (not torch.eye: ONNX runtimes)
        energy_h = energy_h.masked_fill(self_pos, float("-inf"))  # u itself is in the row part
        energy_w = torch.einsum("bchw,bchk->bhwk", q, k)  # (B, H, W, W): row keys
        energy = torch.cat([energy_h, energy_w], dim=-1)  # (B, H, W, H + W)
        attn = self.gate(energy.flatten(1, 2)).view_as(energy)  # the gate sees (B, H·W, H + W)
        attn_h, attn_w = attn.split([H, x.shape[3]], dim=-1)
        out = torch.einsum("bhwk,bckw->bchw", attn_h, v) + torch.einsum("bhwk,bchk->bchw", attn_w, v)
        return self.gamma * out + x

    def forward(self, x: Tensor) -> Tensor:
        for _ in range(self.recurrence):
            x = self._cca(x)
        return x
