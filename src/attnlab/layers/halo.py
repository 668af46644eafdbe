"""Blocked local self-attention with halos (Vaswani et al.; HaloNets, CVPR 2021), as timm's ``HaloAttn``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .mhsa import relative_logits
from .registry import register_attention


@register_attention(
    "halo",
    category="spatial",
    paper="Scaling Local Self-Attention for Parameter Efficient Visual Backbones",
    venue="CVPR",
    year=2021,
    url="https://arxiv.org/abs/2103.12731",
)
class HaloAttention(nn.Module):
    """Halo attention: the queries of each b×b block attend to the (b + 2h)×(b + 2h) window around it.

        q = W_q x, split into heads, cut into b×b blocks                    (B, heads, blocks, b², d)
        k, v = W_kv x, zero-padded by h, windows of w = b + 2h per block    (B, heads, blocks, w², d | d_v)
        logits = q kᵀ / √d + q·r^H_{Δy} + q·r^W_{Δx}                        relative positions, not scaled
        out = softmax(logits) v, blocks folded back, heads concatenated     (B, C, H, W)

    Defaults are timm's (its factory's ``halo``; the paper has no official code): b = 8, h = 3 (as its
    ``halonet_h1``), 8 heads, d = d_v = C / heads (timm: C rounded to a multiple of 8, the same at every width
    here), bias-free projections. Zero keys and values stand for the halo beyond the map and stay in the softmax
    (their logit is the position term alone), as timm's. timm needs H and W multiples of b; here the map is padded
    to the next multiple (queries of the padding are dropped, its keys and values are zeros like the halo's), so any
    H×W works and multiples of b give timm's output. In a ResNet it replaces every 3×3 convolution (the paper's
    HaloNets). With ``stride=2`` the query projection is strided (blocks of b/2 queries, the windows unchanged),
    as timm (its FIXME: unsure this is the paper's); with ``avg_down`` (or an odd b) full-size attention is
    followed by a 2×2 average pool instead. The weights pass through ``gate`` (a softmax) as
    (B, heads, blocks_y, blocks_x, queries, window keys), which has no map layout. kv's channels are per head
    [k; v], timm's layout, so a timm state dict loads as it is.
    Parameters: C·heads·d (q) + C·heads·(d + d_v) (kv) + 2·(2w − 1)·d (relative tables; a block's queries see
    the top w + b − 1 offsets of each, the others are timm's size, kept so that its checkpoints load).
    """

    def __init__(
        self,
        channels: int,
        *,
        stride: int = 1,
        num_heads: int = 8,
        dim_head: int | None = None,
        block_size: int = 8,
        halo_size: int = 3,
        avg_down: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(num_heads, name="num_heads")
        check_channels(channels, multiple_of=num_heads)
        dim_head = channels // num_heads if dim_head is None else check_channels(dim_head, name="dim_head")
        check_channels(block_size, name="block_size")
        if isinstance(halo_size, bool) or not isinstance(halo_size, int) or halo_size < 0:
            raise ValueError(f"halo_size: expected an int >= 0, got {halo_size!r}")
        if stride not in (1, 2):
            raise ValueError(f"stride: expected 1 or 2, got {stride}")
        f = factory_kwargs(device, dtype)
        pooled = stride == 2 and (avg_down or block_size % 2 != 0)
        self.num_heads = num_heads
        self.dims = (dim_head, channels // num_heads)  # d (queries, keys), d_v
        self.block_size = block_size
        self.halo_size = halo_size
        self.window = block_size + 2 * halo_size
        self.query_stride = stride if stride == 2 and not pooled else 1
        self.q = nn.Conv2d(channels, num_heads * dim_head, 1, stride=self.query_stride, bias=False, **f)
        self.kv = nn.Conv2d(channels, num_heads * sum(self.dims), 1, bias=False, **f)
        scale = dim_head**-0.5
        self.pos_embed = nn.ParameterDict(
            {
                axis: nn.Parameter(torch.empty(2 * self.window - 1, dim_head, **f))
                for axis in ("height_rel", "width_rel")
            }
        )
        self.gate = nn.Softmax(dim=-1)
        self.pool = nn.AvgPool2d(2, ceil_mode=True) if pooled else nn.Identity()
        for w in (self.q.weight, self.kv.weight):
            nn.init.trunc_normal_(w, std=channels**-0.5)  # fan-in, as timm
        for table in self.pos_embed.values():
            nn.init.trunc_normal_(table, std=scale)

    def forward(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape
        heads, (d, d_v), b, halo, win = self.num_heads, self.dims, self.block_size, self.halo_size, self.window
        nh, nw = (H + b - 1) // b, (W + b - 1) // b  # blocks per axis, the map padded to multiples of b
        bq = b // self.query_stride  # queries per block side
        q = self.q(x)  # (B, heads·d, ⌈H/s⌉, ⌈W/s⌉)
        h_out, w_out = q.shape[-2:]
        q = F.pad(q, (0, nw * bq - w_out, 0, nh * bq - h_out))
        q = q.reshape(B, heads, d, nh, bq, nw, bq).permute(0, 1, 3, 5, 4, 6, 2)  # (B, heads, nh, nw, bq, bq, d)
        kv = F.pad(self.kv(x), (halo, halo + nw * b - W, halo, halo + nh * b - H))  # zero keys, values outside
        offsets = torch.arange(win, device=x.device)
        rows = torch.arange(nh, device=x.device)[:, None] * b + offsets  # (nh, win): each block's window rows
        cols = torch.arange(nw, device=x.device)[:, None] * b + offsets
        kv = kv[:, :, rows][..., cols]  # (B, heads·(d + d_v), nh, win, nw, win): a gather (unfold's, for ONNX)
        kv = kv.reshape(B, heads, d + d_v, nh, win, nw, win).permute(0, 1, 3, 5, 4, 6, 2)
        kv = kv.reshape(B, heads, nh, nw, win * win, d + d_v)
        k, v = kv.split([d, d_v], dim=-1)  # (B, heads, nh, nw, win², d | d_v)
        logits = q.reshape(B, heads, nh, nw, bq * bq, d) @ k.transpose(-1, -2) * d**-0.5
        qb = q.reshape(B * heads, nh * nw, bq, bq, d)
        rel_y = relative_logits(qb, self.pos_embed["height_rel"], bq, win, dim=2, key_size=win)  # (…, bq, bq, win)
        rel_x = relative_logits(qb, self.pos_embed["width_rel"], bq, win, dim=3, key_size=win)
        pos = (rel_y[..., :, None] + rel_x[..., None, :]).reshape(B, heads, nh, nw, bq * bq, win * win)
        out = self.gate(logits + pos) @ v  # (B, heads, nh, nw, bq², d_v)
        out = out.reshape(B, heads, nh, nw, bq, bq, d_v).permute(0, 1, 6, 2, 4, 3, 5)  # fold the blocks back
        out = out.reshape(B, heads * d_v, nh * bq, nw * bq)[:, :, :h_out, :w_out]
        return self.pool(out)
