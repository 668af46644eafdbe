"""Attention-augmented convolution (Bello, Zoph, Vaswani, Shlens, Le; ICCV 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .mhsa import relative_logits
from .multihead import SelfAttention2d, _split_heads
from .registry import register_attention


def _offset_table(rel: Tensor, size: int, max_size: int) -> tuple[Tensor, int]:
    """The table of offsets −(size − 1) … size − 1 from one of offsets up to ±(max_size − 1): offsets beyond
    the table share its end rows (clipped relative positions); returns the table and its max_size."""
    if size <= max_size:
        return rel, max_size
    extra = size - max_size
    return torch.cat([rel[:1].expand(extra, -1), rel, rel[-1:].expand(extra, -1)]), size


def _attention_width(ratio: float, channels: int, heads: int, per_head: int, name: str) -> int:
    """ratio·C rounded down to a multiple of ``heads``, at least ``per_head`` channels per head."""
    if not ratio > 0:
        raise ValueError(f"{name}: expected a positive number, got {ratio}")
    return max(heads * per_head, int(ratio * channels) // heads * heads)


@register_attention(
    "aa",
    category="spatial",
    paper="Attention Augmented Convolutional Networks",
    venue="ICCV",
    year=2019,
    url="https://arxiv.org/abs/1904.09925",
)
class AttentionAugmentedConv(nn.Module):
    """Attention-augmented convolution: a 3×3 conv's maps concatenated with relative self-attention maps.

        q, k, v = 1×1 projections of x (stride s)                        (B, Nh, N, dk/Nh | dv/Nh), N = H'·W'
        l_ij = q_iᵀ (k_j + r^W_{w_j − w_i} + r^H_{h_j − h_i}) / √(dk/Nh)   Eq. 3: content + 2-D relative logits
        O = Concat_h(softmax(l) v) W_O                                    Eq. 1-2, W_O: 1×1 conv dv -> dv
        out = BN([conv3×3(x); O])                                         AAConv: C − dv conv channels  (B, C, H', W')

    dk = κC, dv = υC with κ = 0.2, υ = 0.1, Nh = 8 heads and at least 20 key channels per head
    (``min_key_dim``): the paper's setting, "κ = 2υ = 0.2", "a minimum of 20 dimensions per head for the
    keys" (with it a bias-free AA-ResNet-50 has the paper's 25.8 M parameters, without it 25.1 M). Widths are
    rounded down to multiples of Nh, dv at least one channel per head (C = 256: dk = 160, dv = 24). The
    relative embeddings r^W, r^H (dk/Nh wide, shared by the heads) cover offsets up to ±(``max_size`` − 1);
    the paper sizes them 2W − 1, 2H − 1 for one input size, and here larger offsets share the last
    embedding, so any H×W works and maps up to ``max_size`` get the paper's relative logits. Biased convs as
    the paper's code; the BN after the concatenation is the paper's (in all its experiments a BN follows the
    augmented convolution, to scale the conv and attention maps' contributions): in a ResNet
    this module replaces the 3×3 conv and its BN (placement "conv"), in the last three stages as the
    paper's AA-ResNets. With ``stride`` s the 1×1 projections sample every s-th position, the conv's output
    grid (the paper's code has no stride). The survey's code draws its relative embeddings at random in
    every forward pass instead of learning them. Built on ``SelfAttention2d`` (W_O is ``attn.proj``) and
    BoTNet's ``relative_logits``; the weights pass through ``attn.gate`` as (B, Nh, N, H', W').
    Parameters: 9C(C − dv) + (C − dv) + C(2dk + dv) + 2dk + dv + dv² + dv + 2(2·max_size − 1)·dk/Nh + 2C.
    """

    def __init__(
        self,
        channels: int,
        *,
        stride: int = 1,
        key_ratio: float = 0.2,
        value_ratio: float = 0.1,
        num_heads: int = 8,
        min_key_dim: int = 20,
        max_size: int = 64,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(num_heads, name="num_heads")
        check_channels(max_size, name="max_size")
        check_channels(stride, name="stride")
        check_channels(min_key_dim, name="min_key_dim")
        dk = _attention_width(key_ratio, channels, num_heads, min_key_dim, "key_ratio")
        dv = _attention_width(value_ratio, channels, num_heads, 1, "value_ratio")
        if dv >= channels:
            raise ValueError(
                f"channels: expected more than dv = {dv} (value_ratio·C, at least num_heads={num_heads}) so the "
                f"convolution keeps channels, got {channels}"
            )
        f = factory_kwargs(device, dtype)
        self.stride = stride
        self.num_heads = num_heads
        self.max_size = max_size
        self.conv = nn.Conv2d(channels, channels - dv, 3, stride, 1, **f)
        self.attn = SelfAttention2d(channels, num_heads, qk_channels=dk, v_channels=dv, **f)
        self.attn.proj = nn.Conv2d(dv, dv, 1, **f)  # W_O mixes the heads' dv channels (Eq. 2), not back to C
        head_dim = dk // num_heads
        self.rel_h = nn.Parameter(torch.randn(2 * max_size - 1, head_dim, **f) * head_dim**-0.5)
        self.rel_w = nn.Parameter(torch.randn(2 * max_size - 1, head_dim, **f) * head_dim**-0.5)
        self.bn = nn.BatchNorm2d(channels, **f)

    def forward(self, x: Tensor) -> Tensor:
        s = self.stride
        xs = x[:, :, ::s, ::s] if s > 1 else x  # a stride-s 1×1 conv sees these positions
        B, _, H, W = xs.shape
        qkv = self.attn.qkv(xs).flatten(2).transpose(1, 2)  # (B, N, 2dk + dv)
        q, k, v = (_split_heads(t, self.num_heads) for t in qkv.split(self.attn.splits, dim=-1))
        qs = (q * q.shape[-1] ** -0.5).reshape(B, self.num_heads, H, W, -1)  # (B, Nh, H, W, dk/Nh)
        rel_h, size_h = _offset_table(self.rel_h, H, self.max_size)
        rel_w, size_w = _offset_table(self.rel_w, W, self.max_size)
        bias_h = relative_logits(qs, rel_h, H, size_h, dim=2)  # (B, Nh, H, W, H)
        bias_w = relative_logits(qs, rel_w, W, size_w, dim=3)  # (B, Nh, H, W, W)
        bias = (bias_h[..., :, None] + bias_w[..., None, :]).reshape(B, self.num_heads, H * W, H * W)
        attended = self.attn.attend(q, k, v, (B, H, W), attn_bias=bias)  # (B, dv, H, W), W_O applied
        return self.bn(torch.cat([self.conv(x), attended], dim=1))
