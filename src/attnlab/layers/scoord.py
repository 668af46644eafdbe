"""timm's simplified coordinate attention (``SimpleCoordAttn``), the ``scoord`` of its attention factory: Coordinate
Attention (Hou, Zhou, Feng; CVPR 2021) with one shared linear bottleneck, no BN, and the two directions' logits
added before a single sigmoid. timm has no paper for the variant."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


def scoord_width(channels: int, reduction: float) -> int:
    """timm's bottleneck width: C · (1/r) · 2/3 (its se_factor) to the nearest multiple of 8, at least 8
    (make_divisible(·, 8, round_limit=0): never raised by a multiple)."""
    if reduction <= 0:
        raise ValueError(f"reduction: expected a positive number, got {reduction}")
    return max(8, int(channels * (1 / reduction) * (2 / 3) + 4) // 8 * 8)


@register_attention(
    "scoord",
    category="channel_spatial",
    paper="Coordinate Attention for Efficient Mobile Network Design",
    venue="CVPR",
    year=2021,
    url="https://arxiv.org/abs/2103.02907",
)
class SimpleCoordAttention(nn.Module):
    """Simple coordinate attention: a shared bottleneck per row and per column, the logits summed, one sigmoid.

        z^h = mean over W (B, C, H),  z^w = mean over H (B, C, W)
        f^h = SiLU(W1 z^h + b1) (B, H, d),  f^w = SiLU(W1 z^w + b1) (B, W, d)     W1: C -> d, shared
        a^h = W_h f^h + b_h  (B, C, H, 1),  a^w = W_w f^w + b_w  (B, C, 1, W)       W_h, W_w: d -> C
        out = x · σ(a^h + a^w)                                                     (B, C, H, W)

    Defaults are timm's: r = 4 (rd_ratio 1/4) times its SE factor 2/3, d = C/6 to the nearest multiple of 8, at
    least 8 (40 at C = 256); biased linear layers (nn.Linear, timm's keys fc1, fc_h, fc_w); SiLU. The paper's CA
    (attnlab's ``coord``) concatenates z^h and z^w through one 1×1 conv + BN + h-swish, uses d = max(8, C/32) and
    multiplies two sigmoid gates, σ(a^h) · σ(a^w). The weights pass through ``gate`` (B, C, H, W).
    Parameters: C·d + d + 2(d·C + C).
    """

    def __init__(self, channels: int, *, reduction: float = 4, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        hidden = scoord_width(channels, reduction)
        self.fc1 = nn.Linear(channels, hidden, **f)
        self.act = nn.SiLU()
        self.fc_h = nn.Linear(hidden, channels, **f)
        self.fc_w = nn.Linear(hidden, channels, **f)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        f_h = self.act(self.fc1(x.mean(dim=3).transpose(1, 2)))  # (B, H, d)
        f_w = self.act(self.fc1(x.mean(dim=2).transpose(1, 2)))  # (B, W, d)
        a_h = self.fc_h(f_h).transpose(1, 2).unsqueeze(3)  # (B, C, H, 1)
        a_w = self.fc_w(f_w).transpose(1, 2).unsqueeze(2)  # (B, C, 1, W)
        return x * self.gate(a_h + a_w)
