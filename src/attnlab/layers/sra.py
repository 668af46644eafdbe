"""SegFormer's efficient self-attention (Xie et al.; NeurIPS 2021), PVT's spatial-reduction attention (Wang et al.;
ICCV 2021): keys and values from a map shrunk R× per side by a strided conv."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ..functional import scaled_dot_product_attention
from ._shared import check_channels, factory_kwargs
from .multihead import _split_heads
from .registry import register_attention

__all__ = ["EfficientSelfAttention", "TokensOnMap"]


@register_attention(
    "sra",
    category="spatial",
    paper="SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers",
    venue="NeurIPS",
    year=2021,
    url="https://arxiv.org/abs/2105.15203",
)
class EfficientSelfAttention(nn.Module):
    """Efficient self-attention: multi-head attention whose keys and values come from a spatially reduced map.

        x (B, C, H, W) -> tokens X (B, N = H·W, C)
        X̂ = LN(Conv_R×R,stride R(x))                        (B, M, C), M = ⌊H/R⌋·⌊W/R⌋   Eq. 2, the reduction
        Q = X W_q, [K; V] = X̂ W_kv, split into heads         (B, heads, N | M, C/heads)
        out = softmax(Q Kᵀ / √(C/heads)) V W_o               (B, N, C) -> (B, C, H, W)   Eq. 1

    Defaults are the MiT encoders' stage 2 (every mit_b0…b5 of the official mix_transformer.py): 2 heads,
    reduction ratio R = 4, biased q/kv (``qkv_bias=True`` as every MiT configuration, the class's own default is
    False), a biased output projection, LayerNorm (eps 1e-5) on the reduced tokens and none with R = 1 (no sr conv
    either: plain multi-head attention, stage 4). Stage 2 because its 2 heads divide every width here (stage 3's
    5 do not) and it reduces the keys (stage 4 does not). The SegFormer paper's Eq. 2 writes the reduction as a
    reshape + linear layer (N/R × C·R) -> (N/R × C); the official code, followed here, uses the equivalent
    R×R conv with stride R, and R is the per-side ratio (the paper's R is its square). The official conv floors
    ⌊H/R⌋ (trailing rows and columns that fill no window are left out of the keys); it is kept, and a side
    shorter than R is zero-padded at its end to one window, so any H×W works (the official fails there).
    Initialization as the official: Linear weights trunc-normal (std 0.02), zero biases, conv N(0, 2/fan_out).
    No dropout (SegFormer trains with attention and projection dropout 0).

    No residual: the module is the official ``Attention``; its Transformer block owns x + Attn(LN(x)). As a
    plug-in at "block" (after the branch's last BN), the ResNet block's own addition is that residual.
    The weights (B, heads, N, h, w), (h, w) the reduced map's size, pass through ``gate`` (an identity) when it
    carries a hook; the fused kernels run otherwise. Keys as the official (``q``, ``kv``, ``sr``, ``norm``,
    ``proj``; nn.Linear on tokens), so its checkpoints and timm's ``pvt_v2.Attention`` load.
    Parameters: 4C² + 4C (q, kv, proj) + R²C² + C (sr) + 2C (LayerNorm); with R = 1, 4C² + 4C. At ResNet widths the
    sr conv dominates: 16C², 67 M at C = 2048.
    """

    def __init__(
        self,
        channels: int,
        *,
        num_heads: int = 2,
        sr_ratio: int = 4,
        qkv_bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(num_heads, name="num_heads")
        if check_channels(channels) % num_heads:
            raise ValueError(f"num_heads: expected a divisor of channels={channels}, got {num_heads}")
        check_channels(sr_ratio, name="sr_ratio")
        f = factory_kwargs(device, dtype)
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(channels, channels, bias=qkv_bias, **f)
        self.kv = nn.Linear(channels, 2 * channels, bias=qkv_bias, **f)
        self.proj = nn.Linear(channels, channels, **f)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(channels, channels, sr_ratio, stride=sr_ratio, **f)
            self.norm = nn.LayerNorm(channels, **f)
        else:
            self.sr, self.norm = nn.Identity(), nn.Identity()
        self.gate = nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialization (``_init_weights`` of mix_transformer.py)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def reduce(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """The key/value tokens X̂ (B, M, C) and the reduced map's (h, w)."""
        r = self.sr_ratio
        if r == 1:
            return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])
        H, W = x.shape[2], x.shape[3]
        if min(H, W) < r:  # one window at least: zeros after the last row / column
            x = F.pad(x, (0, max(0, r - W), 0, max(0, r - H)))
        x = self.sr(x)  # (B, C, ⌊H/R⌋, ⌊W/R⌋)
        return self.norm(x.flatten(2).transpose(1, 2)), (x.shape[2], x.shape[3])

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
        reduced, key_hw = self.reduce(x)  # (B, M, C)
        q = _split_heads(self.q(tokens), self.num_heads)  # (B, heads, N, d)
        k, v = (_split_heads(t, self.num_heads) for t in self.kv(reduced).chunk(2, dim=-1))  # (B, heads, M, d)
        if self.gate._forward_hooks or self.gate._forward_pre_hooks:
            _, weights = scaled_dot_product_attention(q, k, v, return_weights=True)  # (B, heads, N, M)
            out = self.gate(weights.unflatten(-1, key_hw)).flatten(-2) @ v
        else:
            out = scaled_dot_product_attention(q, k, v)  # (B, heads, N, d)
        out = self.proj(out.transpose(1, 2).reshape(B, H * W, C))  # (B, N, C)
        return out.transpose(1, 2).reshape(B, C, H, W)


class TokensOnMap(nn.Module):
    """timm's ``pvt_v2.Attention`` (the official SegFormer ``Attention``'s computation), ``mixer(tokens (B, N, C),
    [H, W]) -> (B, N, C)``, run on a map (B, C, H, W) -> (B, C, H, W), for comparisons; keys: the mixer's under
    ``attn.``."""

    def __init__(self, mixer: nn.Module) -> None:
        super().__init__()
        self.attn = mixer

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        out = self.attn(x.flatten(2).transpose(1, 2), [H, W])
        return out.transpose(1, 2).reshape(B, C, H, W)
