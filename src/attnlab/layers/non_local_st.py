"""The non-local block over space-time (Wang, Girshick, Gupta, He; CVPR 2018), on per-frame maps."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, check_frames, factory_kwargs
from .multihead import SelfAttention2d
from .registry import register_attention


@register_attention(
    "non_local_st",
    category="spatial_temporal",
    paper="Non-local Neural Networks (space-time)",
    venue="CVPR",
    year=2018,
    url="https://arxiv.org/abs/1711.07971",
)
class NonLocalSpaceTime(nn.Module):
    """Non-local block whose positions are all T·H·W positions of a clip (the paper's video model, Sec. 3-4).

        y_i = softmax_j(θ(x_i)ᵀ φ(x_j) / √C') g(x_j),  i, j over T·H·W     Eq. 1-3, embedded Gaussian
        z_i = BN(W_z y_i) + x_i                                            Eq. 6, BN scale zero at init

    Per-frame maps (B·T, C, H, W) with ``num_frames`` = T: θ, φ, g, W_z are 1×1×1 convolutions, which are 1×1
    convolutions of each frame. As the official code (facebookresearch/video-nonlocal-net: ``USE_SCALE``,
    ``USE_MAXPOOL``) and pytorchvideo, and unlike the paper's text: the scores are scaled by 1/√C', and the input
    of φ and g is max-pooled 1×2×2 in space before their convolutions (``sub_sample``; skipped on maps under
    2×2; the paper pools after φ and g). C' = C/2. The weights pass through
    ``attn.gate`` as (B, 1, T·H·W, T·H', W'): for each query, the key frames stacked along the height.

    The attention is the explicit product softmax(θᵀφ) gᵀ in the (B, C', T·H·W) layout, as the official code and
    pytorchvideo compute it: at a ResNet's stage-3 and -4 shapes (one 128- or 256-wide head, a few hundred keys)
    torch's fused CPU kernel is up to 1.4× slower (``benchmarks/video.py``).
    """

    def __init__(self, channels: int, num_frames: int = 8, *, sub_sample: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(num_frames, name="num_frames")
        f = factory_kwargs(device, dtype)
        inter = max(1, channels // 2)
        self.num_frames, self.sub_sample = num_frames, sub_sample
        self.attn = SelfAttention2d(channels, 1, qk_channels=inter, v_channels=inter, **f)
        self.bn = nn.BatchNorm2d(channels, **f)
        nn.init.zeros_(self.bn.weight)

    def forward(self, x: Tensor) -> Tensor:
        T = self.num_frames
        B = check_frames(x, T, "non-local space-time input")
        _, _, H, W = x.shape
        c = self.attn.splits[0]
        pooled = F.max_pool2d(x, 2) if self.sub_sample and min(H, W) >= 2 else x  # the keys' positions
        theta, phi, g = self.attn.project(x, pooled)  # (B·T, C', H, W), (B·T, C', H', W') twice
        Hk, Wk = phi.shape[-2:]

        def clip(t: Tensor) -> Tensor:  # (B·T, C', h, w) -> (B, C', T·h·w)
            return t.reshape(B, T, c, -1).transpose(1, 2).reshape(B, c, -1)

        theta, phi, g = clip(theta), clip(phi), clip(g)
        scores = (theta.transpose(1, 2) @ phi).mul_(c**-0.5)  # (B, T·H·W, T·H'·W')
        weights = self.attn.gate(scores.softmax(dim=-1).view(B, 1, -1, T * Hk, Wk)).view(B, T * H * W, -1)
        y = g @ weights.transpose(1, 2)  # (B, C', T·H·W)
        y = y.view(B, c, T, H * W).transpose(1, 2).reshape(B * T, c, H, W)
        return x + self.bn(self.attn.proj(y))
