"""timm's ``gca`` (``GlobalContext(fuse_add=True, fuse_scale=False)``): GCNet's block (Cao et al., ICCVW 2019) at
timm's widths and LayerNorm eps. The computation is attnlab's ``gc``; only the defaults are timm's."""

from __future__ import annotations

from .gc import GlobalContext
from .registry import register_attention


@register_attention(
    "gca",
    category="spatial",
    paper="GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond",
    venue="ICCVW",
    year=2019,
    url="https://arxiv.org/abs/1904.11492",
)
class GlobalContextAdd(GlobalContext):
    """Global context block with addition fusion, as timm's attention factory builds ``gca``.

        α_j = softmax_j(W_k x_j)                          attention pooling over the N = H·W positions (B, 1, N)
        c = Σ_j α_j x_j                                   (B, C, 1, 1)
        z_i = x_i + W_v2 ReLU(LN(W_v1 c))                 GCNet's Eq. 3: bottleneck transform, addition fusion

    The module is attnlab's ``gc`` (the paper's GC-ResNet block) with timm's defaults: r = 8 (timm's rd_ratio 1/8,
    the paper's r16 is 16), the hidden width C/r rounded to the nearest int (timm's make_divisible with divisor 1,
    at least 1; ``gc`` rounds down as the official code), LayerNorm eps 1e-6 (timm's LayerNorm2d; the official
    code's nn.LayerNorm 1e-5). Initialization: W_v2's weight and bias start at zero, so the block starts as the
    identity, as the official code; timm zeroes only the weight and leaves the bias at PyTorch's default init.
    The attention map passes through ``gate`` (a softmax over H·W). Parameters, d = round(C/r):
    C + 1 + 2Cd + d + 2d + C (W_k, W_v1, LayerNorm, W_v2).
    """

    layer_norm_eps = 1e-6  # timm's LayerNorm2d

    def __init__(self, channels: int, *, reduction: float = 8, device=None, dtype=None) -> None:
        super().__init__(channels, reduction=reduction, device=device, dtype=dtype)

    @staticmethod
    def hidden_width(channels: int, reduction: float) -> int:
        """C / r rounded to the nearest int, at least 1: timm's make_divisible(C / r, 1, round_limit=0)."""
        if reduction <= 0:
            raise ValueError(f"reduction: expected a positive number, got {reduction}")
        return max(1, int(channels * (1 / reduction) + 0.5))  # timm: channels * rd_ratio
