"""VAN: large-kernel attention (Guo, Lu, Liu, Liu, Cheng, Hu; CVMJ 2023), as VAN's attention block."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


class LKA(nn.Module):
    """Large-kernel attention: a 21×21 depth-wise view decomposed into 5×5, 7×7 dilation 3 and 1×1.

        attn = conv1×1(DW-D-conv7×7,d=3(DW-conv5×5(x)))     (B, C, H, W), biased convs
        out = attn ⊙ x

    Zero padding 2 and 9 keeps H×W at any size (a 1×1 map sees only the kernels' centres). ``gate`` (an
    identity) carries ``attn``, the attention map: it is not squashed, as in the paper and its code.
    """

    def __init__(self, channels: int, *, device=None, dtype=None) -> None:
        super().__init__()
        f = factory_kwargs(device, dtype)
        self.conv0 = nn.Conv2d(channels, channels, 5, padding=2, groups=channels, **f)
        self.conv_spatial = nn.Conv2d(channels, channels, 7, padding=9, dilation=3, groups=channels, **f)
        self.conv1 = nn.Conv2d(channels, channels, 1, **f)
        self.gate = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.conv1(self.conv_spatial(self.conv0(x))))


@register_attention(
    "lka",
    category="channel_spatial",
    paper="Visual Attention Network",
    venue="CVMJ",
    year=2023,
    url="https://arxiv.org/abs/2202.09741",
)
class VANAttention(nn.Module):
    """VAN's attention block around large-kernel attention (LKA), with its own shortcut.

        u = GELU(proj_1(x))                                   1×1 conv C -> C              (B, C, H, W)
        a = conv1×1(DW-D-conv7×7,d=3(DW-conv5×5(u)))          Eq. 1: LKA's attention map   (B, C, H, W)
        out = proj_2(a ⊙ u) + x                               Eq. 2 (⊙ elementwise), 1×1 conv C -> C

    The plug-in is this whole block, not LKA alone: the survey's code (``SpatialAttention``, the module its
    example builds) and VAN's ``Attention`` (VAN-Classification, models/van.py) are this block, and it is
    what people insert into other networks; the submodules carry the official names (``proj_1``,
    ``spatial_gating_unit.conv0`` …), so VAN's attention weights load as they are. Paper and code agree;
    VAN's own Block puts a BN before it and a layer scale after it, which belong to VAN's block, not to
    this module. The 5×5 + 7×7 dilation 3 pair covers a 21×21 window (Sec. 3.2, K = 21, d = 3). In a
    ResNet it sits where SE does (placement "block"). The map ``a`` passes through
    ``spatial_gating_unit.gate``. Parameters: 3C² + 79C (three 1×1 convs, 25C + 49C depth-wise, all biased).
    """

    def __init__(self, channels: int, *, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        self.proj_1 = nn.Conv2d(channels, channels, 1, **f)
        self.activation = nn.GELU()
        self.spatial_gating_unit = LKA(channels, **f)
        self.proj_2 = nn.Conv2d(channels, channels, 1, **f)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x)))) + x
