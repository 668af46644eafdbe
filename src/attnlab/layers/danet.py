"""DANet: dual attention, position and channel (Fu et al.; CVPR 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, reduced
from .multihead import SelfAttention2d
from .registry import register_attention


@register_attention(
    "danet",
    category="channel_spatial",
    paper="Dual Attention Network for Scene Segmentation",
    venue="CVPR",
    year=2019,
    url="https://arxiv.org/abs/1809.02983",
)
class DualAttention(nn.Module):
    """DANet: a position attention module (PAM) and a channel attention module (CAM), summed.

        PAM: s_ji = softmax_i(B_i · C_j),  E_j = α Σ_i s_ji D_i + x_j         Eq. 1-2, over the N positions
        CAM: x_ji = softmax_i(max(XXᵀ) − X_j · X_i),  E_j = β Σ_i x_ji X_i + X_j    Eq. 3-4, over channels
        out = x + α·PAM(x) + β·CAM(x)       the sum of the two modules' outputs with x counted once

    B, C: 1×1 convs C -> C/8; D: C -> C; α = β = 0 at the start (the paper), so the module starts as the
    identity. CAM subtracts each row from its maximum before the softmax, as the official code. The
    paper fuses the two modules' outputs by summation after a conv each in its segmentation head; as a
    drop-in module the two residual outputs are summed with x counted once. Any spatial size works.
    Gates: ``position.gate`` (B, 1, N, N) and ``gates.channel`` (B, C, C).
    Parameters: 2(C·C/8 + C/8) + C² + C + 2.
    """

    def __init__(self, channels: int, *, reduction: float = 8, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        self.position = SelfAttention2d(
            channels, 1, qk_channels=reduced(channels, reduction), v_channels=channels, scale=1.0, out_proj=False, **f
        )
        self.alpha = nn.Parameter(torch.zeros(1, **f))
        self.beta = nn.Parameter(torch.zeros(1, **f))
        self.gates = nn.ModuleDict({"channel": nn.Softmax(dim=-1)})

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        flat = x.reshape(B, C, H * W)
        energy = flat @ flat.transpose(1, 2)  # (B, C, C)
        attn = self.gates["channel"](energy.amax(dim=-1, keepdim=True) - energy)
        cam = (attn @ flat).view(B, C, H, W)
        return x + self.alpha * self.position(x) + self.beta * cam
