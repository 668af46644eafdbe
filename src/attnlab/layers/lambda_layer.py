"""Lambda layer with a lambda convolution (Bello; LambdaNetworks, ICLR 2021), as timm's ``LambdaLayer``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, check_odd, factory_kwargs
from .registry import register_attention


@register_attention(
    "lambda",
    category="spatial",
    paper="LambdaNetworks: Modeling Long-Range Interactions Without Attention",
    venue="ICLR",
    year=2021,
    url="https://arxiv.org/abs/2102.08602",
)
class LambdaLayer(nn.Module):
    """Multi-query lambda layer: each context is summarized into linear functions (lambdas) applied to the queries.

        q = BN(W_q x)  split into h heads                                   (B, h, M, k)     M = H·W
        σ(K) = softmax over the M positions of W_k x                         (B, k, M)        normalized keys
        V = BN(W_v x)                                                        (B, M, v)        v = C / h
        λ^c = σ(K) V                                                         (B, k, v)        content lambda, Eq. 2
        λ^p_n = Σ_{m in the r×r square around n} e_{m−n} v_mᵀ                (B, M, k, v)     position lambdas
        y_n = concat over heads of q_nᵀ (λ^c + λ^p_n)                        (B, C, H, W)

    The position lambdas are the paper's lambda convolution (Sec. 4.2): a 3-D convolution of V, seen as one
    (H, W, v) channel, with an (r, r, 1) kernel and k output channels, zero-padded, so any H×W works and no size is
    fixed at build time (timm's other, relative-embedding variant needs one; it is not offered). The intra-depth u is
    1. Defaults are timm's: k = 16 (``dim_head``), h = 4, r = 9, bias-free projections, a bias on the lambda
    convolution. The paper's ImageNet LambdaResNets use r = 23 (k = 16, h = 4, u = 1), and its pseudo-code
    convolves with the embeddings alone (no bias); it has no official PyTorch code, timm's is followed. In a ResNet
    it replaces the 3×3 convolution (the paper's hybrids: the last two stages); with ``stride=2`` a 2×2 average pool
    follows, as timm (with ``ceil_mode``: odd sizes halve as a stride-2 conv, equal to timm at even sizes).
    The normalized keys pass through ``gate`` as (B, k, H, W): where the content lambda pools from.
    Parameters: C·(h·k + k + C/h) + 2·h·k + 2·C/h (BNs) + k·r² + k.
    """

    def __init__(
        self,
        channels: int,
        *,
        stride: int = 1,
        num_heads: int = 4,
        dim_head: int = 16,
        r: int = 9,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(num_heads, name="num_heads")
        check_channels(channels, multiple_of=num_heads)
        check_channels(dim_head, name="dim_head")
        check_odd(r, "r")
        if stride not in (1, 2):
            raise ValueError(f"stride: expected 1 or 2, got {stride}")
        f = factory_kwargs(device, dtype)
        self.num_heads = num_heads
        self.dim_k = dim_head
        self.dim_v = channels // num_heads
        self.splits = (num_heads * dim_head, dim_head, self.dim_v)
        self.qkv = nn.Conv2d(channels, sum(self.splits), 1, bias=False, **f)
        self.norm_q = nn.BatchNorm2d(num_heads * dim_head, **f)
        self.norm_v = nn.BatchNorm2d(self.dim_v, **f)
        self.conv_lambda = nn.Conv3d(1, dim_head, (r, r, 1), padding=(r // 2, r // 2, 0), **f)
        self.gate = nn.Identity()
        self.pool = nn.AvgPool2d(2, ceil_mode=True) if stride == 2 else nn.Identity()
        nn.init.trunc_normal_(self.qkv.weight, std=channels**-0.5)  # fan-in, as timm
        nn.init.trunc_normal_(self.conv_lambda.weight, std=dim_head**-0.5)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(x).split(self.splits, dim=1)
        q = self.norm_q(q).reshape(B, self.num_heads, self.dim_k, H * W).transpose(-1, -2)  # (B, h, M, k)
        keys = self.gate(F.softmax(k.reshape(B, self.dim_k, H * W), dim=-1).reshape(B, self.dim_k, H, W))
        v = self.norm_v(v)  # (B, v, H, W)
        values = v.reshape(B, self.dim_v, H * W).transpose(-1, -2)  # (B, M, v)
        content = keys.reshape(B, self.dim_k, H * W) @ values  # λ^c (B, k, v)
        position = self.conv_lambda(v.permute(0, 2, 3, 1).unsqueeze(1))  # λ^p (B, k, H, W, v)
        position = position.reshape(B, self.dim_k, H * W, self.dim_v)  # (B, k, M, v)
        out = q @ content.unsqueeze(1) + torch.einsum("bhmk,bkmv->bhmv", q, position)  # (B, h, M, v)
        return self.pool(out.transpose(-1, -2).reshape(B, C, H, W))
