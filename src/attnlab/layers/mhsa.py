"""BoTNet's multi-head self-attention with 2-D relative positions (Srinivas et al.; CVPR 2021)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .multihead import SelfAttention2d, _split_heads
from .registry import register_attention


def relative_logits(
    q: Tensor, rel: Tensor, size: int, max_size: int, dim: int, *, key_size: int | None = None
) -> Tensor:
    """q · r_{j−i} along one axis: q (B, heads, H, W, d), rel (2·max_size − 1, d) -> (B, heads, H, W, key_size).

    ``dim`` is the axis of q the offsets run along (2 for height, 3 for width); ``size`` queries along it, and
    ``key_size`` keys (default ``size``: all to all; HaloNet's: a window of ``max_size`` keys per block).
    """
    idx = torch.arange(size, device=q.device)
    keys = idx if key_size is None else torch.arange(key_size, device=q.device)
    offsets = keys[None, :] - idx[:, None] + max_size - 1  # (size_i, size_j): j − i, shifted to >= 0
    r = rel[offsets]  # (size_i, size_j, d)
    if dim == 2:
        return torch.einsum("bnhwd,hkd->bnhwk", q, r)
    return torch.einsum("bnhwd,wkd->bnhwk", q, r)


@register_attention(
    "mhsa",
    category="spatial",
    paper="Bottleneck Transformers for Visual Recognition",
    venue="CVPR",
    year=2021,
    url="https://arxiv.org/abs/2101.11605",
)
class BottleneckMHSA(nn.Module):
    """BoTNet's all-to-all multi-head self-attention over a feature map, built on ``SelfAttention2d``.

        q, k, v = 1×1 projections of x, split into heads                           (B, heads, N, d)
        logits = q kᵀ / √d + q r_{h_j − h_i} / √d + q r_{w_j − w_i} / √d           Fig. 4: content + position
        out = softmax(logits) v, heads concatenated                                (B, C, H, W)

    4 heads and bias-free projections, as the official code; no output projection (the bottleneck's
    next 1×1 conv plays that role) and no residual (the block owns it). Relative embeddings r (one table
    per axis, shared by the heads) cover offsets up to ``max_size`` − 1, so any H, W <= ``max_size``
    works; the paper fixes the size at training time. In a ResNet, the paper puts it in place of the 3×3
    convolution of the last stage's blocks; with ``stride=2`` (the stage's first block) a 2×2 average
    pool follows, as in BoTNet. The weights pass through ``attn.gate``.
    Parameters: 3C² + 2(2·max_size − 1)·C/heads.
    """

    def __init__(
        self, channels: int, *, num_heads: int = 4, max_size: int = 64, stride: int = 1, device=None, dtype=None
    ) -> None:
        super().__init__()
        check_channels(channels, multiple_of=num_heads)
        if max_size < 1:
            raise ValueError(f"max_size: expected >= 1, got {max_size}")
        f = factory_kwargs(device, dtype)
        self.num_heads = num_heads
        self.max_size = max_size
        head_dim = channels // num_heads
        self.attn = SelfAttention2d(channels, num_heads, bias=False, out_proj=False, **f)
        self.rel_h = nn.Parameter(torch.randn(2 * max_size - 1, head_dim, **f) * head_dim**-0.5)
        self.rel_w = nn.Parameter(torch.randn(2 * max_size - 1, head_dim, **f) * head_dim**-0.5)
        if stride not in (1, 2):
            raise ValueError(f"stride: expected 1 or 2, got {stride}")
        self.pool = nn.AvgPool2d(2, ceil_mode=True) if stride == 2 else nn.Identity()  # sizes as a stride-2 conv

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        if max(H, W) > self.max_size:
            raise ValueError(
                f"x: expected H and W <= max_size={self.max_size}, got {H}×{W}; "
                f"build the module with max_size >= {max(H, W)}"
            )
        qkv = self.attn.qkv(x).flatten(2).transpose(1, 2)  # (B, N, 3C)
        q, k, v = (_split_heads(t, self.num_heads) for t in qkv.split(self.attn.splits, dim=-1))
        qs = (q * q.shape[-1] ** -0.5).reshape(B, self.num_heads, H, W, -1)  # (B, heads, H, W, d)
        bias_h = relative_logits(qs, self.rel_h, H, self.max_size, dim=2)  # (B, heads, H, W, H)
        bias_w = relative_logits(qs, self.rel_w, W, self.max_size, dim=3)  # (B, heads, H, W, W)
        bias = (bias_h[..., :, None] + bias_w[..., None, :]).reshape(B, self.num_heads, H * W, H * W)
        return self.pool(self.attn.attend(q, k, v, (B, H, W), attn_bias=bias))
