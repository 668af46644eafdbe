"""SCNet: self-calibrated convolutions (Liu, Hou, Cheng, Wang, Feng; CVPR 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


class _DownPool(nn.Module):
    """r×r average pooling, stride r, floor mode (the official ``AvgPool2d(r, r)``); a side shorter than r is
    averaged whole (one window of that side's length), where the official pooling fails."""

    def __init__(self, r: int) -> None:
        super().__init__()
        self.r = r

    def forward(self, x: Tensor) -> Tensor:
        window = (min(self.r, x.shape[-2]), min(self.r, x.shape[-1]))
        return F.avg_pool2d(x, window, window)


class SCConv(nn.Module):
    """The self-calibration branch (the paper's K2, K3, K4 on X1), the official ``SCConv``.

    T = Up(BN(K2 * AvgPool_r(x)))          Eq. 1-2, nearest upsampling to x's size   (B, C', H, W)
    Y' = BN(K3 * x) ⊙ σ(x + T)              Eq. 3: the calibration gate ``gate``
    Y = BN(K4 * Y')                         Eq. 4, K4 carries the stride
    """

    def __init__(self, channels: int, *, stride: int, pooling_r: int, device=None, dtype=None) -> None:
        super().__init__()
        f = factory_kwargs(device, dtype)

        def conv_bn(s: int) -> list[nn.Module]:
            return [nn.Conv2d(channels, channels, 3, s, 1, bias=False, **f), nn.BatchNorm2d(channels, **f)]

        self.k2 = nn.Sequential(_DownPool(pooling_r), *conv_bn(1))  # keys k2.1, k2.2 as the official code's
        self.k3 = nn.Sequential(*conv_bn(1))
        self.k4 = nn.Sequential(*conv_bn(stride))
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        calibration = self.gate(x + F.interpolate(self.k2(x), size=x.shape[-2:]))  # nearest, as the official
        return self.k4(self.k3(x) * calibration)


@register_attention(
    "scconv",
    category="channel_spatial",
    paper="Improving Convolutional Networks with Self-Calibrated Convolutions",
    venue="CVPR",
    year=2020,
    url="https://openaccess.thecvf.com/content_CVPR_2020/html/"
    "Liu_Improving_Convolutional_Networks_With_Self-Calibrated_Convolutions_CVPR_2020_paper.html",
)
class SelfCalibratedConv(nn.Module):
    """Self-calibrated convolution: the split 3×3 convolution of SCNet's bottleneck (the paper's Fig. 2).

        x2, x1 = x[:, :C/2], x[:, C/2:]                      the split, the paper's names     (B, C/2, H, W)
        Y2 = BN(K1 * x2)                                       plain 3×3 conv, the stride
        T = Up(BN(K2 * AvgPool_r(x1)))                         Eq. 1-2, r = 4, nearest Up
        Y1 = BN(K4 * (BN(K3 * x1) ⊙ σ(x1 + T)))                Eq. 3-4, K4 carries the stride
        out = [Y2; Y1]                                         (B, C, H', W')

    The official SCBottleneck makes the two halves with two 1×1 convs (``conv1_a``, ``conv1_b``), which is one
    1×1 conv to C channels split in two: here the block's own 1×1 conv makes them, and this module is the
    whole split convolution that replaces the 3×3 conv and its BN (placement "conv", ``stride``); the
    block's ReLU after it is the official ReLU on both halves. The half ``x[:, :C/2]`` goes through the plain
    K1 (``k1``, the official ``conv1_a`` path), the other through the self-calibration (``scconv``), and
    they are concatenated in that order, as the official code. pooling_r = 4, cardinality 1, bias-free convs
    each followed by a BN: SCNet-50's. The official average pooling needs H, W >= r (floor mode drops the
    remainder); a side shorter than r is averaged whole here. The paper's equations leave out the BNs that
    follow each conv in the official code (followed here). The calibration gate σ(x1 + T) passes through
    ``scconv.gate`` (B, C/2, H, W).
    Parameters: 4·(9(C/2)² + C) = 9C² + 4C (four 3×3 convs C/2 -> C/2 and their BNs).
    """

    def __init__(self, channels: int, *, stride: int = 1, pooling_r: int = 4, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels, multiple_of=2)
        check_channels(stride, name="stride")
        if isinstance(pooling_r, bool) or not isinstance(pooling_r, int) or pooling_r < 1:
            raise ValueError(f"pooling_r: expected a positive int, got {pooling_r!r}")
        f = factory_kwargs(device, dtype)
        half = channels // 2
        self.k1 = nn.Sequential(nn.Conv2d(half, half, 3, stride, 1, bias=False, **f), nn.BatchNorm2d(half, **f))
        self.scconv = SCConv(half, stride=stride, pooling_r=pooling_r, **f)

    def forward(self, x: Tensor) -> Tensor:
        plain, calibrated = x.chunk(2, dim=1)
        return torch.cat([self.k1(plain), self.scconv(calibrated)], dim=1)
