"""GCNet: global context block (Cao, Xu, Lin, Wei, Hu; ICCV Workshops 2019)."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "gc",
    category="spatial",
    paper="GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond",
    venue="ICCVW",
    year=2019,
    url="https://arxiv.org/abs/1904.11492",
)
class GlobalContext(nn.Module):
    """Global context block: one query-independent attention map pools a context added to every position.

        α_j = softmax_j(W_k x_j)                          context modelling: attention pooling (B, 1, N)
        c = Σ_j α_j x_j                                   (B, C, 1, 1)
        z_i = x_i + W_v2 ReLU(LN(W_v1 c))                 Eq. 3: bottleneck transform, addition fusion

    W_k: 1×1 conv C -> 1; W_v1: C -> C/r, LayerNorm over (C/r, 1, 1), ReLU, W_v2: C/r -> C; r = 16
    (GC-ResNet "r16"). The last conv starts at zero, as the official code, so the block starts as the
    identity. The attention map passes through ``gate`` (a softmax over H·W).
    Parameters: C + 1 + 2C²/r + C/r + 2C/r + C.
    """

    layer_norm_eps = 1e-5  # the official code's nn.LayerNorm

    def __init__(self, channels: int, *, reduction: float = 16, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        hidden = self.hidden_width(channels, reduction)
        self.conv_mask = nn.Conv2d(channels, 1, 1, **f)
        self.gate = nn.Softmax(dim=-1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, **f),
            nn.LayerNorm([hidden, 1, 1], eps=self.layer_norm_eps, **f),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, **f),
        )
        nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    @staticmethod
    def hidden_width(channels: int, reduction: float) -> int:
        """C / r rounded down, at least 1: the official code's int(C · ratio)."""
        return reduced(channels, reduction)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        attn = self.gate(self.conv_mask(x).reshape(B, 1, H * W))  # (B, 1, N)
        context = (x.reshape(B, C, H * W) @ attn.transpose(1, 2)).view(B, C, 1, 1)  # (B, C, 1, 1)
        return x + self.transform(context)
