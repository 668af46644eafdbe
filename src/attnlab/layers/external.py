"""External attention (Guo, Liu, Mu, Hu; TPAMI 2022): two small learnable memories shared by all samples."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


@register_attention(
    "external",
    category="spatial",
    paper="Beyond Self-attention: External Attention using Two Linear Layers for Visual Tasks",
    venue="TPAMI",
    year=2022,
    url="https://arxiv.org/abs/2105.02358",
)
class ExternalAttention(nn.Module):
    """External attention: positions attend to S learned memory units instead of to each other.

        F = conv1(x)                              1×1 conv C -> C with a bias         (B, C, N), N = H·W
        Ã = M_k F                                 M_k: S×C (a bias-free linear layer)  (B, S, N)
        â_sn = softmax_n(ã_sn)                    double normalization: over the positions ...
        a_sn = â_sn / (1e-9 + Σ_s' â_s'n)         ... then an l1 norm over the memory units
        F_out = M_v A                             M_v: C×S (bias-free)                 (B, C, N)
        out = ReLU(x + BN(conv2(F_out)))          conv2: 1×1 C -> C without bias

    S = 64 memory units (the official code's k). The block is the official code's, whole: EANet's
    ``External_attention`` (model_torch.py) and the survey's (code/spatial_attentions/external_attention.py)
    wrap the two memories in the 1×1 convs, the BN, the residual and the ReLU, so this module does too; its
    paper puts it in a segmentation head on the backbone's output, so in a ResNet it takes the non-local
    place (on block outputs, where its own residual and ReLU belong). The paper's M_k and M_v are two
    memories; the official PyTorch code sets ``linear_1.weight.data`` to a permuted view of ``linear_0``'s,
    so the two share one storage at the start. Here they are two parameters (the paper's; a shared storage
    would not survive ``.to()`` or a state-dict load), initialized as that code leaves them: one N(0, 2/C)
    draw (its last init, linear_1's), M_v = M_kᵀ; conv weights N(0, 2/C_out), BN weight 1, bias 0.
    ``gate`` (an identity) sees the softmax over positions as (B, S, H, W), each memory unit's spatial
    map, before the l1 norm over units (after it every position's weights sum to 1, a flat map).
    Parameters: 2C² + C (convs) + 2SC (memories) + 2C (BN).
    """

    def __init__(self, channels: int, *, memory_units: int = 64, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(memory_units, name="memory_units")
        f = factory_kwargs(device, dtype)
        self.conv1 = nn.Conv2d(channels, channels, 1, **f)
        self.memory_key = nn.Parameter(torch.empty(memory_units, channels, **f))  # M_k (S, C)
        self.memory_value = nn.Parameter(torch.empty(channels, memory_units, **f))  # M_v (C, S)
        self.conv2 = nn.Conv2d(channels, channels, 1, bias=False, **f)
        self.bn = nn.BatchNorm2d(channels, **f)
        self.gate = nn.Identity()
        self.eps = 1e-9  # the official code's
        std = math.sqrt(2.0 / channels)
        with torch.no_grad():
            self.conv1.weight.normal_(0, std)
            self.conv2.weight.normal_(0, std)
            self.memory_key.normal_(0, std)
            self.memory_value.copy_(self.memory_key.t())

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        feat = self.conv1(x).reshape(B, C, H * W)  # (B, C, N)
        logits = torch.matmul(self.memory_key, feat)  # (B, S, N)
        attn = self.gate(logits.softmax(dim=-1).view(B, -1, H, W)).reshape(B, -1, H * W)  # over positions
        attn = attn / (self.eps + attn.sum(dim=1, keepdim=True))  # over memory units
        out = torch.matmul(self.memory_value, attn).view(B, C, H, W)  # (B, C, H, W)
        return torch.relu(x + self.bn(self.conv2(out)))
