"""Axial-DeepLab's position-sensitive axial attention (Wang, Zhu, Green, Adam, Yuille, Chen; ECCV 2020)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, largest_groups
from .registry import register_attention


def axial_groups(channels: int, groups: int) -> int:
    """The largest G <= ``groups`` that splits C into groups of an even width (half of it queries, half keys)."""
    check_channels(groups, name="groups")
    if channels % 2:
        raise ValueError(f"channels: expected an even number (each group's queries and keys take half), got {channels}")
    return largest_groups(channels, groups, per_group=2)


class AxisAttention(nn.Module):
    """One position-sensitive axial-attention layer, along the height (``axis="height"``) or the width.

    Its weights pass through ``gate`` (softmax over the keys) as (B, G·H_q, H_k, W) along the height and
    (B, G·W_q, H, W_k) along the width: over heads and queries, each map averages to the attention each key
    position receives from its column (row).
    """

    def __init__(self, channels: int, groups: int, kernel_size: int, axis: str, *, device=None, dtype=None) -> None:
        super().__init__()
        if axis not in ("height", "width"):
            raise ValueError(f"axis: expected 'height' or 'width', got {axis!r}")
        f = factory_kwargs(device, dtype)
        self.groups, self.kernel_size, self.axis = groups, kernel_size, axis
        gp = channels // groups
        self.splits = (gp // 2, gp // 2, gp)
        self.qkv_transform = nn.Conv2d(channels, 2 * channels, 1, bias=False, **f)
        self.bn_qkv = nn.BatchNorm2d(2 * channels, **f)
        self.bn_similarity = nn.BatchNorm2d(3 * groups, **f)
        self.bn_output = nn.BatchNorm2d(2 * channels, **f)
        self.relative = nn.Parameter(torch.empty(2 * gp, 2 * kernel_size - 1, **f))  # r^q, r^k, r^v by offset
        self.gate = nn.Softmax(dim=2 if axis == "height" else 3)
        nn.init.normal_(self.qkv_transform.weight, 0.0, math.sqrt(1.0 / channels))  # the official init
        nn.init.normal_(self.relative, 0.0, math.sqrt(1.0 / gp))

    def forward(self, x: Tensor) -> Tensor:
        if self.axis == "width":
            x = x.transpose(2, 3)
        N, C, L, M = x.shape  # attention along L (the height, or the width after the transpose)
        G, K = self.groups, self.kernel_size
        qkv = self.bn_qkv(self.qkv_transform(x)).reshape(N, G, -1, L, M)
        q, k, v = qkv.split(self.splits, dim=2)  # (N, G, gp/2 | gp/2 | gp, L, M)
        idx = torch.arange(L, device=x.device)
        offset = idx[:, None] - idx[None, :]  # (L_i, L_j): i − j
        r = self.relative[:, offset.clamp(1 - K, K - 1) + K - 1]  # (2gp, L, L): r[c, i, j] = r_c(i − j)
        rq, rk, rv = r.split(self.splits, dim=0)
        qk = torch.einsum("ngcim,ngcjm->ngijm", q, k)
        qr = torch.einsum("ngcim,cij->ngijm", q, rq)  # q_i · r^q(i − j)
        kr = torch.einsum("ngcjm,cji->ngijm", k, rk)  # k_j · r^k(j − i)
        sim = torch.cat([qk, qr, kr], dim=1).reshape(N, 3 * G, L * L, M)
        sim = self.bn_similarity(sim).reshape(N, 3, G, L, L, M).sum(dim=1)  # (N, G, L_q, L_k, M)
        if L > K:  # beyond the table's offsets: the paper's local span of 2K − 1 positions
            sim = sim.masked_fill((offset.abs() > K - 1)[:, :, None], float("-inf"))
        a = self._weights(sim)
        sv = torch.einsum("ngijm,ngcjm->ngcim", a, v)
        sve = torch.einsum("ngijm,cij->ngcim", a, rv)  # Σ_j a_ij r^v(i − j)
        out = torch.stack([sv, sve], dim=3).reshape(N, 2 * C, L, M)  # channels (c, 0) and (c, 1), as the official
        out = self.bn_output(out).reshape(N, C, 2, L, M).sum(dim=2)
        return out.transpose(2, 3) if self.axis == "width" else out

    def _weights(self, sim: Tensor) -> Tensor:
        """Softmax over the keys, through ``gate`` in a map layout (see the class docstring)."""
        N, G, L, _, M = sim.shape
        if self.axis == "height":
            return self.gate(sim.reshape(N, G * L, L, M)).reshape(N, G, L, L, M)
        a = self.gate(sim.permute(0, 1, 2, 4, 3).reshape(N, G * L, M, L))  # (N, G·W_q, H, W_k)
        return a.reshape(N, G, L, M, L).permute(0, 1, 2, 4, 3)


@register_attention(
    "axial",
    category="spatial",
    paper="Axial-DeepLab: Stand-Alone Axial-Attention for Panoptic Segmentation",
    venue="ECCV",
    year=2020,
    url="https://arxiv.org/abs/2003.07853",
)
class AxialAttention(nn.Module):
    """Position-sensitive axial attention: attention along the height, then along the width (Eq. 4, Fig. 2).

        q, k, v = BN(W_qkv x), split into G groups                     (B, G, gp/2 | gp/2 | gp, H, W)
        s_ij = BN(q_i·k_j) + BN(q_i·r^q_(i−j)) + BN(k_j·r^k_(j−i))     along one axis, per group  (B, G, L, L)
        y_i = BN(Σ_j softmax_j(s)_ij v_j) + BN(Σ_j softmax_j(s)_ij r^v_(i−j))                    (B, C, H, W)
        out = width layer(height layer(x)), then an s×s average pool when ``stride`` = s > 1

    Each layer is the official AxialAttention (csrhddlam/axial-deeplab, lib/models/axialnet.py): bias-free q/k/v
    projection C -> 2C (queries and keys of gp/2 channels, values of gp, gp = C/G), BN on the projections, on
    the three similarity terms and on the two output terms (Eq. 4 writes their plain sum: the BNs are the code's),
    no 1/√d scale; G = ``groups`` = 8, reduced to the largest G that leaves every group an even width (C must be
    even). The relative embeddings r^q, r^k, r^v, one table of 2·``kernel_size`` − 1 offsets shared by the groups,
    are the official code's, whose ``kernel_size`` (default 56, layer1's size at 224²) must equal the feature size.
    Here it is the span: any L <= ``kernel_size`` attends globally with the offsets from the table's centre (as
    mhsa's ``max_size``), equal to the official at L = ``kernel_size``; a longer axis attends to the
    2·kernel_size − 1 positions around each query (the paper's local span m of Eq. 4; the similarities outside
    still enter bn_similarity's statistics, the mask comes after it).
    In a ResNet it replaces the bottleneck's 3×3 conv (and its BN), as Axial-ResNet ("conv"); with stride s the
    official floor-mode AvgPool2d(s) follows, here in ceil mode so that odd sizes match the strided shortcut (equal
    at even sizes). Gates: ``height.gate`` (B, G·H, H_k, W) and ``width.gate`` (B, G·W, H, W_k).
    Parameters: per layer 2C² + 4C + 6G + 4C + 2gp(2·kernel_size − 1); two layers.
    """

    def __init__(
        self, channels: int, *, groups: int = 8, kernel_size: int = 56, stride: int = 1, device=None, dtype=None
    ) -> None:
        super().__init__()
        check_channels(channels)
        for name, value in (("kernel_size", kernel_size), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        f = factory_kwargs(device, dtype)
        g = axial_groups(channels, groups)
        self.height = AxisAttention(channels, g, kernel_size, "height", **f)
        self.width = AxisAttention(channels, g, kernel_size, "width", **f)
        self.pool = nn.AvgPool2d(stride, ceil_mode=True) if stride > 1 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.width(self.height(x)))
