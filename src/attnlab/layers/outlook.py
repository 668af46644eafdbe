"""Outlook attention, VOLO's token mixer (Yuan, Hou, Jiang, Feng, Yan; TPAMI 2022), as a residual plug-in."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, check_odd, factory_kwargs, largest_groups
from .registry import register_attention


def outlook_heads(channels: int, num_heads: int | None) -> int:
    """VOLO's heads of 32 channels (C / 32 in every VOLO model), or the largest divisor of C below that, at least 1."""
    if num_heads is None:
        return largest_groups(channels, max(1, channels // 32))
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1 or channels % num_heads:
        raise ValueError(f"num_heads: expected None or a positive divisor of channels={channels}, got {num_heads!r}")
    return num_heads


def unfold(x: Tensor, kernel_size: int, stride: int) -> Tensor:
    """``nn.Unfold`` with padding k // 2: (B, C, H, W) -> (B, C, k², ⌈H/s⌉, ⌈W/s⌉).

    im2col (``F.unfold``, 1.4× faster forward + backward at 8 × 256 × 28²) except in an ONNX export, which gets
    shifted slices: ONNX at opset 17 has no Col2Im for the inverse ``fold``."""
    k, s, p = kernel_size, stride, kernel_size // 2
    h, w = math.ceil(x.shape[2] / s), math.ceil(x.shape[3] / s)
    if not torch.onnx.is_in_onnx_export():
        return F.unfold(x, k, padding=p, stride=s).view(x.shape[0], x.shape[1], k * k, h, w)
    xp = F.pad(x, (p, p, p, p))
    return torch.stack(
        [xp[:, :, a : a + s * (h - 1) + 1 : s, b : b + s * (w - 1) + 1 : s] for a in range(k) for b in range(k)],
        dim=2,
    )


def fold(y: Tensor, kernel_size: int, stride: int, size: tuple[int, int]) -> Tensor:
    """``F.fold`` with padding k // 2, the adjoint of ``unfold``: (B, C, k², h, w) -> (B, C, H, W), overlaps summed."""
    k, s, p = kernel_size, stride, kernel_size // 2
    B, C, K, h, w = y.shape
    if not torch.onnx.is_in_onnx_export():
        return F.fold(y.reshape(B, C * K, h * w), size, k, padding=p, stride=s)
    if s > 1:  # each window's values at its stride-s position: zeros between them
        y = F.pad(y[:, :, :, :, None, :, None], (0, s - 1, 0, 0, 0, s - 1)).reshape(B, C, K, h * s, w * s)
    out = F.pad(y[:, :, 0], (0, k - 1, 0, k - 1))
    for i in range(1, k * k):
        a, b = divmod(i, k)
        out = out + F.pad(y[:, :, i], (b, k - 1 - b, a, k - 1 - a))
    return out[:, :, p : p + size[0], p : p + size[1]]


@register_attention(
    "outlook",
    category="spatial",
    paper="VOLO: Vision Outlooker for Visual Recognition",
    venue="TPAMI",
    year=2022,
    url="https://arxiv.org/abs/2106.13112",
)
class OutlookAttention(nn.Module):
    """Outlook attention: each position's k×k window is re-weighted by weights generated from the centre token.

        y = LN(x)                                       over channels, at each position          (B, H, W, C)
        v = y W_v                                       no bias                                  (B, H, W, C)
        A = softmax(reshape(ȳ W_A + b_A) / √d)          ȳ: y average-pooled by the stride;      (B, n, h, w, k², k²)
                                                        per head, window output i x window input j
        Y_(i) = Σ_j A_(i, j) v_(j)                      Eq. 3: aggregate each window's values    (B, n, h, w, k², d)
        Ỹ = fold(Y)                                     Eq. 4: sum the windows' overlaps         (B, H, W, C)
        out = x + Ỹ W_p + b_p                           (B, C, H, W)

    k = 3 and padding 1 (k // 2: with stride 1 the only padding that keeps H×W), stride 1, qkv_bias False, as the
    official OutlookAttention (sail-sg/volo, models/volo.py; timm.models.volo.OutlookAttention). Heads: VOLO's
    every model has heads of d = 32 channels (n = C / 32: 192/6, 256/8, 384/12), so ``num_heads=None`` takes
    C / 32, or its largest divisor of C below that (1 head up to C = 63). The plug-in is the first half of VOLO's
    Outlooker block, its pre-norm (LayerNorm, eps 1e-5) and residual included, without the MLP half: in a ResNet
    block ("block", its paper has none) it adds to the branch instead of replacing it. With stride s > 1 the weights
    come from the ceil-mode s×s average pool and the windows from every s-th position, as the official code; the
    output keeps H×W. Unfold and fold are the official's nn.Unfold / F.fold, and in an ONNX export shifted slices.
    The weights pass through ``gate`` (softmax over j) as (B, n, h, w, k², k²): windows, not a map of H×W.
    Parameters: 2C (LN) + C² (W_v) + C·k⁴n + k⁴n (W_A) + C² + C (W_p); W_A grows as C²·81/32 with the heads
    (298,376 at C = 256, 19.0 M at C = 2048).
    """

    def __init__(
        self,
        channels: int,
        *,
        num_heads: int | None = None,
        kernel_size: int = 3,
        stride: int = 1,
        qkv_bias: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        check_odd(kernel_size)
        check_channels(stride, name="stride")
        f = factory_kwargs(device, dtype)
        self.num_heads = outlook_heads(channels, num_heads)
        self.kernel_size = kernel_size
        self.stride = stride
        self.scale = (channels // self.num_heads) ** -0.5
        self.norm = nn.LayerNorm(channels, **f)
        self.v = nn.Linear(channels, channels, bias=qkv_bias, **f)
        self.attn = nn.Linear(channels, kernel_size**4 * self.num_heads, **f)
        self.proj = nn.Linear(channels, channels, **f)
        self.gate = nn.Softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        k, s, n = self.kernel_size, self.stride, self.num_heads
        y = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, C, H, W)
        v = unfold(self.v(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), k, s)  # (B, C, k², h, w)
        h, w = v.shape[-2:]
        v = v.reshape(B, n, C // n, k * k, h, w).permute(0, 1, 4, 5, 3, 2)  # (B, n, h, w, k², d)
        pooled = F.avg_pool2d(y, s, s, ceil_mode=True) if s > 1 else y  # (B, C, h, w)
        logits = self.attn(pooled.permute(0, 2, 3, 1)).reshape(B, h, w, n, k * k, k * k).permute(0, 3, 1, 2, 4, 5)
        a = self.gate(logits * self.scale)  # (B, n, h, w, k², k²)
        out = (a @ v).permute(0, 1, 5, 4, 2, 3).reshape(B, C, k * k, h, w)  # (B, C, k², h, w)
        out = self.proj(fold(out, k, s, (H, W)).permute(0, 2, 3, 1))  # (B, H, W, C)
        return x + out.permute(0, 3, 1, 2)
