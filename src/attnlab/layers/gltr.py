"""GLTR: dilated temporal pyramid and temporal self-attention (Li, Zhang, Wang, Huang; ICCV 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, check_frames, check_odd, factory_kwargs
from .registry import register_attention


@register_attention(
    "gltr",
    category="temporal",
    paper="Global-Local Temporal Representations for Video Person Re-Identification",
    venue="ICCV",
    year=2019,
    url="https://arxiv.org/abs/1908.10049",
)
class GlobalLocalTemporal(nn.Module):
    """GLTR on per-frame maps (B·T, C, H, W), ``num_frames`` = T: at every position (h, w) a sequence of T frame
    features, x ∈ R^{C×T}.

        f  = W_r x                                       1×1, C -> d = C/(N+1), with bias
        F' = [f, W_1 ∗_{r_1} f, …, W_N ∗_{r_N} f]        DTP (Sec. 3.2): N temporal convs of width 3, d -> d,
                                                         dilations r = 1, 2, 3, no bias; (N+1)·d = C channels
        A  = softmax_j(θ(F'_i)ᵀ φ(F'_j))                 TSA (Sec. 3.3): T×T, no 1/√ scaling
        F'' = BN(W_z (g(F') Aᵀ)) + F'                    θ, φ, g: C -> C/2 with bias; BN scale and shift zero

    This follows the official code (ljn114514/GLTR: ``resnet.py``, ``NonLocalBlock1D.py``), which differs from
    the paper's text in three ways: the pyramid keeps the undilated features f beside the N dilated branches,
    its rates are 1, 2, 3, and TSA is a non-local block (its BN starts at zero, so the module starts as the
    pyramid). The code reduces ResNet-50's 2048 channels to d = 128 and returns 4d = 512; here d = C/(N+1), so
    the module maps C to C like every zoo module (at ResNet-18's C = 512, d = 128 as in the code).

    The paper applies GLTR to spatially pooled frame features (H = W = 1, exactly as here) and then averages
    over time; this module keeps the map and the frames, so the pooling is the network's. The TSA weights
    (B·H·W, T, T) pass through ``gate``.
    Parameters: C·d + d + N·3·d² + 3(C·C/2 + C/2) + C/2·C + C + 2C: 185,536 at C = 256.
    """

    def __init__(
        self,
        channels: int,
        num_frames: int = 8,
        *,
        dilations: tuple[int, ...] = (1, 2, 3),
        kernel_size: int = 3,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(num_frames, name="num_frames")
        if not dilations or any(not isinstance(r, int) or r < 1 for r in dilations):
            raise ValueError(f"dilations: expected one or more positive ints, got {dilations!r}")
        if channels % (len(dilations) + 1):
            raise ValueError(
                f"channels: expected a multiple of {len(dilations) + 1} (the undilated features and "
                f"{len(dilations)} dilated branches of equal width), got {channels}"
            )
        check_odd(kernel_size)
        f = factory_kwargs(device, dtype)
        d, inner = channels // (len(dilations) + 1), max(1, channels // 2)
        self.num_frames = num_frames
        self.reduce = nn.Conv1d(channels, d, 1, **f)  # W_r
        self.pyramid = nn.ModuleList(
            nn.Conv1d(d, d, kernel_size, dilation=r, padding=r * (kernel_size // 2), bias=False, **f) for r in dilations
        )
        self.qkv = nn.Conv1d(channels, 3 * inner, 1, **f)  # θ, φ, g
        self.proj = nn.Conv1d(inner, channels, 1, **f)  # W_z
        self.bn = nn.BatchNorm1d(channels, **f)
        nn.init.zeros_(self.bn.weight)
        self.gate = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        T = self.num_frames
        B = check_frames(x, T, "GLTR input")
        _, C, H, W = x.shape
        seq = x.view(B, T, C, H * W).permute(0, 3, 2, 1).reshape(B * H * W, C, T)  # a sequence per position
        f = self.reduce(seq)  # (N, d, T)
        local = torch.cat([f, *(conv(f) for conv in self.pyramid)], dim=1)  # F' (N, C, T)
        theta, phi, g = self.qkv(local).chunk(3, dim=1)  # each (N, C/2, T)
        weights = self.gate((theta.transpose(1, 2) @ phi).softmax(dim=-1))  # A (N, T, T): row t over key frames
        out = self.bn(self.proj(g @ weights.transpose(1, 2))) + local  # F'' (N, C, T)
        return out.view(B, H * W, C, T).permute(0, 3, 2, 1).reshape(B * T, C, H, W)
