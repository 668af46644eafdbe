"""HamNet's Hamburger: global context by non-negative matrix factorization (Geng et al.; ICLR 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention

__all__ = ["Hamburger", "nmf_steps"]

EPS = 1e-6  # the official multiplicative updates' denominator offset


def nmf_steps(x: Tensor, bases: Tensor, coef: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """``steps`` multiplicative updates (Lee & Seung) of x ≈ bases · coefᵀ, coefficients first, then bases.

    x (B·S, d, N) >= 0, bases (B·S, d, R), coef (B·S, N, R) -> updated (bases, coef).
    """
    for _ in range(steps):
        coef = coef * (x.transpose(1, 2) @ bases) / (coef @ (bases.transpose(1, 2) @ bases) + EPS)
        bases = bases * (x @ coef) / (bases @ (coef.transpose(1, 2) @ coef) + EPS)
    return bases, coef


@register_attention(
    "ham",
    category="spatial",
    paper="Is Attention Better Than Matrix Decomposition?",
    venue="ICLR",
    year=2021,
    url="https://arxiv.org/abs/2109.04553",
)
class Hamburger(nn.Module):
    """Hamburger: lower bread, ham (NMF), upper bread, residual.

        Z = ReLU(W_l x + b_l)                                lower bread, 1×1 conv C -> D      (B, D, H, W)
        Z -> S groups of (d = D/S) × N, N = H·W; D_0 = the buffered bases (S, d, R), C_0 = softmax_R(Zᵀ D_0)
        C <- C ⊙ (ZᵀD) / (C DᵀD),  D <- D ⊙ (Z C) / (D CᵀC)   NMF multiplicative updates, K steps  (B·S, N, R)
        C̄ = C ⊙ (ZᵀD̄) / (C DᵀD̄)                              one more coefficient update: the one-step gradient
        M(Z) = D̄ C̄ᵀ                                          the low-rank reconstruction       (B, D, H, W)
        out = ReLU(x + BN(W_u M(Z)))                        upper bread, 1×1 conv D -> C without bias, residual

    The official HamNet code (seg/HamNet/hamburger: HamburgerV1 + NMF2D): S = 1, R = 64, K = 6 steps in training
    and 7 in eval (the ``ham.py`` defaults; its ``settings.py`` sets 6 for both), every denominator + 1e-6, the K
    steps without gradients and only the last coefficient update differentiated (the paper's one-step gradient:
    D̄ and C are constants of the backward pass). Scaled to C: the official runs D = 512 on its head's 512 channels,
    so D = C here, and R = min(64, D/8): the official's 64 from D = 512 up, its ratio R/D = 1/8 below.

    Deterministic, unlike the official default: the official draws a random initial basis (``torch.rand``,
    normalized over d) at every forward (``RAND_INIT = True``), which makes eval depend on the draw. Here the
    bases are its ``RAND_INIT = False`` path's: one draw at construction, kept as the buffer ``bases`` (S, d, R),
    without the official's update of that buffer during eval forwards (``online_update``, a moving average of the
    batch's final bases: eval outputs would depend on earlier batches). The BN has torch's momentum 0.1 (the
    official HamNet's network-wide sync BN uses 3e-4; its later mmseg head, seg_light_ham, mmcv's 0.1). The
    HamNet of the official settings.py (VERSION = 'V2') adds a 3×3 "cheese" conv + BN + ReLU between ham and upper
    bread; this is the plain Hamburger, H(Z) = W_u M(W_l Z) added to Z after a BN (``HamburgerV1``), with that
    class's ReLU after the addition. The coefficients C̄, as (B, S·R, H, W) maps, pass through ``gate``
    (an identity). Parameters: C·D + D + D·C + 2C (the bases are a buffer).
    """

    def __init__(
        self,
        channels: int,
        *,
        dim: int | None = None,
        rank: int | None = None,
        groups: int = 1,
        train_steps: int = 6,
        eval_steps: int = 7,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(groups, name="groups")
        D = channels if dim is None else check_channels(dim, name="dim")
        if D % groups:
            raise ValueError(f"groups: expected a divisor of dim={D} (default: channels), got {groups}")
        R = min(64, max(1, D // 8)) if rank is None else check_channels(rank, name="rank")
        for name, value in (("train_steps", train_steps), ("eval_steps", eval_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
        f = factory_kwargs(device, dtype)
        self.train_steps, self.eval_steps = train_steps, eval_steps
        self.lower_bread = nn.Conv2d(channels, D, 1, **f)
        self.upper_bread = nn.Conv2d(D, channels, 1, bias=False, **f)
        self.bn = nn.BatchNorm2d(channels, **f)
        self.register_buffer("bases", F.normalize(torch.rand(groups, D // groups, R, **f), dim=1))
        self.gate = nn.Identity()
        for conv in (self.lower_bread, self.upper_bread):  # the official _init_weight: N(0, 2 / fan_out)
            nn.init.normal_(conv.weight, 0.0, (2.0 / conv.out_channels) ** 0.5)

    def forward(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape
        S, d, R = self.bases.shape
        z = F.relu(self.lower_bread(x)).reshape(B * S, d, H * W)  # (B·S, d, N)
        bases = self.bases.repeat(B, 1, 1)  # (B·S, d, R)
        zc = z.detach()  # the K steps are constants of the backward pass
        coef = torch.softmax(zc.transpose(1, 2) @ bases, dim=-1)  # (B·S, N, R)
        bases, coef = nmf_steps(zc, bases, coef, self.train_steps if self.training else self.eval_steps)
        coef = coef * (z.transpose(1, 2) @ bases) / (coef @ (bases.transpose(1, 2) @ bases) + EPS)  # with gradient
        coef = self.gate(coef.transpose(1, 2).reshape(B, S * R, H, W)).reshape(B * S, R, H * W)
        ham = (bases @ coef).reshape(B, S * d, H, W)  # (B, D, H, W)
        return F.relu(x + self.bn(self.upper_bread(ham)))
