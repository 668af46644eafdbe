"""CoTNet: the Contextual Transformer block (Li, Yao, Pan, Mei; TPAMI 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, check_odd, factory_kwargs, largest_groups
from .registry import register_attention


def local_aggregate(v: Tensor, w: Tensor, kernel_size: int) -> Tensor:
    """Σ_taps w · v over each zero-padded k×k window: the official CUDA ``aggregation_zeropad`` in plain torch.

    v (B, C, H, W), w (B, C_w, k², H, W) -> (B, C, H, W); channel c takes the weights of channel c mod C_w, as the
    official kernel (channels C_w apart share one kernel). The k² shifted views of the padded input (one slice
    each, the taps ordered row by row) export to ONNX and trace in one graph, where the CUDA kernel does neither.
    """
    B, C, H, W = v.shape
    k, cw = kernel_size, w.shape[1]
    padded = F.pad(v, (k // 2, k // 2, k // 2, k // 2))
    windows = torch.stack([padded[:, :, i : i + H, j : j + W] for i in range(k) for j in range(k)], dim=2)
    windows = windows.reshape(B, C // cw, cw, k * k, H, W)  # (B, share, C_w, k², H, W): c = share index · C_w + c_w
    return (windows * w.unsqueeze(1)).sum(dim=3).reshape(B, C, H, W)


@register_attention(
    "cot",
    category="spatial",
    paper="Contextual Transformer Networks for Visual Recognition",
    venue="TPAMI",
    year=2022,
    url="https://arxiv.org/abs/2107.12292",
)
class ContextualTransformer(nn.Module):
    """Contextual Transformer (CoT) block: self-attention over each k×k neighbourhood, guided by a static context.

        K1 = ReLU(BN(conv_k×k, 4 groups(x)))                 static context                      (B, C, H, W)
        A = GN(W_δ ReLU(BN(W_θ [x; K1])))                    local attention: 2C -> C/2 -> k²·C/8 (B, C/8, k², H, W)
        V = BN(W_v x)                                        1×1 conv C -> C
        K2 = SiLU(BN(V ⊛ A))                                 dynamic context: A's kernel at each position, channels
                                                             C/8 apart sharing one kernel        (B, C, H, W)
        a = softmax_r(W_2 ReLU(BN(W_1 GAP(K1 + K2))))        fusion over r ∈ {K2, K1}: W_1 C -> max(C/2, 32) -> 2C
        out = a_0 ⊙ K2 + a_1 ⊙ K1

    The official ``CotLayer`` (JDAI-CV/CoTNet, models/cotnet.py) exactly, kernel k = 3: 4 groups in the key conv,
    8 channels sharing a local kernel (``share_planes``), GroupNorm with C/8 groups, biases on W_δ, W_1, W_2 only.
    The official ⊛ is a custom CUDA kernel (cupy ``aggregation_zeropad``, ``LocalConvolution``); here it is plain
    torch (``local_aggregate``: zero padding, shifted views). The official code, followed here, concatenates x
    before K1 (the paper writes [K1, Q]), normalizes A by GroupNorm with no softmax, and fuses K2 and K1 by the
    split-attention weights above (radix 2; W_2's channel 2c + r is channel c's weight for r). With ``stride=2``
    a 3×3 average pool of stride 2 (padding 1) runs first, as the official Bottleneck's ``avd`` does in place of a
    strided conv. Where 4 or 8 does not divide C, the largest divisor of C below it is used.
    The widely copied ``CoTAttention`` (External-Attention-pytorch) is another module: no local aggregation (it
    averages A's k² taps and softmaxes them over all H·W positions to gate V element-wise), k²·C weights without
    GroupNorm, [K1, x] concatenated, and out = K1 + K2 with no fusion weights.
    Gates: ``gates.local`` (A, (B, C/8, k², H, W): a spatial map), ``gates.fuse`` (the softmax over r, (B, C, 2)).
    Parameters: 9C²/4 + 2C (key) + C² + C + (C/2)(9C/8) + 9C/8 + 9C/4 (embed) + C² + 2C (value) + 2C (BN)
    + C·d + d + 2d + 2C·d + 2C (fusion), d = max(C/2, 32), at k = 3.
    """

    def __init__(self, channels: int, *, kernel_size: int = 3, stride: int = 1, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        check_odd(kernel_size)
        if stride not in (1, 2):
            raise ValueError(f"stride: expected 1 or 2, got {stride}")
        f = factory_kwargs(device, dtype)
        c, k = channels, kernel_size
        key_groups = largest_groups(c, 4)
        weight_channels = c // largest_groups(c, 8)  # C / share_planes kernels
        hidden = max(1, c // 2)  # the official dim // factor, factor = 2
        attn_chs = max(c * 2 // 4, 32)  # the official max(dim · radix // reduction_factor, 32)
        self.kernel_size = k
        self.pool = nn.AvgPool2d(3, 2, padding=1) if stride == 2 else nn.Identity()
        self.key_embed = nn.Sequential(
            nn.Conv2d(c, c, k, padding=k // 2, groups=key_groups, bias=False, **f),
            nn.BatchNorm2d(c, **f),
            nn.ReLU(),
        )
        self.embed = nn.Sequential(
            nn.Conv2d(2 * c, hidden, 1, bias=False, **f),
            nn.BatchNorm2d(hidden, **f),
            nn.ReLU(),
            nn.Conv2d(hidden, k * k * weight_channels, 1, **f),
            nn.GroupNorm(weight_channels, k * k * weight_channels, **f),
        )
        self.conv1x1 = nn.Sequential(nn.Conv2d(c, c, 1, bias=False, **f), nn.BatchNorm2d(c, **f))
        self.bn = nn.BatchNorm2d(c, **f)
        self.act = nn.SiLU()  # the official "swish"
        self.se = nn.Sequential(
            nn.Conv2d(c, attn_chs, 1, **f),
            nn.BatchNorm2d(attn_chs, **f),
            nn.ReLU(),
            nn.Conv2d(attn_chs, 2 * c, 1, **f),
        )
        self.gates = nn.ModuleDict({"local": nn.Identity(), "fuse": nn.Softmax(dim=2)})

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)
        B, C, H, W = x.shape
        k1 = self.key_embed(x)  # static context K1 (B, C, H, W)
        attn = self.embed(torch.cat([x, k1], dim=1)).reshape(B, -1, self.kernel_size**2, H, W)
        attn = self.gates["local"](attn)  # (B, C/8, k², H, W)
        k2 = self.act(self.bn(local_aggregate(self.conv1x1(x), attn, self.kernel_size)))  # dynamic context K2
        both = torch.stack([k2, k1], dim=2)  # (B, C, 2, H, W)
        pooled = both.sum(dim=2).mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        weights = self.gates["fuse"](self.se(pooled).reshape(B, C, 2))  # (B, C, 2): channel c's K2 and K1
        return (both * weights.reshape(B, C, 2, 1, 1)).sum(dim=2)
