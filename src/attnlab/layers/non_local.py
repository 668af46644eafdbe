"""Non-local block (Wang, Girshick, Gupta, He; CVPR 2018)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .multihead import SelfAttention2d
from .registry import register_attention


@register_attention(
    "non_local",
    category="spatial",
    paper="Non-local Neural Networks",
    venue="CVPR",
    year=2018,
    url="https://arxiv.org/abs/1711.07971",
)
class NonLocal2d(nn.Module):
    """Non-local block, embedded-Gaussian version: every position attends to every position.

        y_i = (1 / C(x)) Σ_j exp(θ(x_i)ᵀ φ(x_j)) g(x_j)     Eq. 1, 3: softmax(θᵀφ) g, no 1/√d scaling
        z_i = BN(W_z y_i) + x_i                              Eq. 6, the block's own residual

    θ, φ, g: 1×1 convs C -> C/2 (the paper's bottleneck); W_z: 1×1 conv C/2 -> C followed by BN whose
    scale starts at zero, so the block starts as the identity (Sec. 4.1). ``sub_sample=True`` adds the
    paper's 2×2 max-pooling of φ and g (applied when the map is at least 2×2). The softmax weights
    (B, 1, N, N) pass through ``attn.gate``. Parameters: 3(C·C/2 + C/2) + C/2·C + C + 2C.
    """

    def __init__(
        self, channels: int, *, inter_channels: int | None = None, sub_sample: bool = False, device=None, dtype=None
    ) -> None:
        super().__init__()
        check_channels(channels)
        inter = (
            max(1, channels // 2) if inter_channels is None else check_channels(inter_channels, name="inter_channels")
        )
        f = factory_kwargs(device, dtype)
        self.sub_sample = sub_sample
        self.inter_channels = inter
        self.attn = SelfAttention2d(channels, 1, qk_channels=inter, v_channels=inter, scale=1.0, **f)
        self.bn = nn.BatchNorm2d(channels, **f)
        nn.init.zeros_(self.bn.weight)

    def forward(self, x: Tensor) -> Tensor:
        if not self.sub_sample:
            return x + self.bn(self.attn(x))
        B, _, H, W = x.shape
        theta, phi, g = self.attn.qkv(x).split(self.attn.splits, dim=1)  # each (B, C', H, W)
        if min(H, W) >= 2:
            phi, g = F.max_pool2d(phi, 2), F.max_pool2d(g, 2)
        q, k, v = (t.flatten(2).transpose(1, 2).unsqueeze(1) for t in (theta, phi, g))  # (B, 1, N|N', C')
        return x + self.bn(self.attn.attend(q, k, v, (B, H, W), key_hw=tuple(phi.shape[-2:])))
