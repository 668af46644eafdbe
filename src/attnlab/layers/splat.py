"""ResNeSt: split attention (Zhang et al.; CVPR Workshops 2022)."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, reduced
from .registry import register_attention


class RadixSoftmax(nn.Module):
    """Softmax over the radix splits within each cardinal group; a sigmoid when radix = 1."""

    def __init__(self, radix: int, cardinality: int) -> None:
        super().__init__()
        self.radix = radix
        self.cardinality = cardinality

    def forward(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        if self.radix == 1:
            return x.sigmoid()
        # (B, K·R·C/K) -> (B, R, K, C/K): channels of fc2 are ordered (cardinal group, split, channel)
        x = x.view(B, self.cardinality, self.radix, -1).transpose(1, 2)
        return x.softmax(dim=1).reshape(B, -1)


@register_attention(
    "splat",
    category="branch",
    paper="ResNeSt: Split-Attention Networks",
    venue="CVPRW",
    year=2022,
    url="https://arxiv.org/abs/2004.08955",
)
class SplitAttention(nn.Module):
    """Split attention: a grouped 3×3 conv makes R splits per cardinal group, mixed by a radix softmax.

        U = ReLU(BN(conv3×3(x)))            C_out·R channels, groups K·R            (B, R, C_out, H, W)
        s = GAP(Σ_r U_r)                     Eq. 1, per cardinal group
        a = r-softmax(W2 ReLU(BN(W1 s)))     Eq. 2, W1: C_out -> inter, W2: inter -> C_out·R, groups K
        out = Σ_r a_r U_r                     Eq. 3

    Radix R = 2, cardinality K = 1, inter = max(C·R / r, 32) with ``reduction`` r = 4 and ``min_channels`` 32:
    ResNeSt-50's defaults (the official code calls them ``reduction_factor`` and the floor of ``inter_channels``).
    A branch module: in a ResNet it replaces the block's 3×3 convolution (``out_channels``, ``stride``).
    The weights pass through ``gate``. Parameters: 9·C·C_out·R/(K·R) + 2C_out·R + C_out·inter/K + inter
    + 2·inter + inter·C_out·R/K + C_out·R.
    """

    def __init__(
        self,
        channels: int,
        *,
        out_channels: int | None = None,
        stride: int = 1,
        radix: int = 2,
        cardinality: int = 1,
        reduction: float = 4,
        min_channels: int = 32,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        groups = cardinality * radix
        check_channels(channels, multiple_of=groups)
        out = channels if out_channels is None else check_channels(out_channels, name="out_channels")
        check_channels(out, multiple_of=cardinality, name="out_channels")
        f = factory_kwargs(device, dtype)
        inter = reduced(channels * radix, reduction, min_channels)  # the official code's inter_channels
        self.radix = radix
        self.conv = nn.Conv2d(channels, out * radix, 3, stride=stride, padding=1, groups=groups, bias=False, **f)
        self.bn0 = nn.BatchNorm2d(out * radix, **f)
        self.act = nn.ReLU()
        self.fc1 = nn.Conv2d(out, inter, 1, groups=cardinality, **f)
        self.bn1 = nn.BatchNorm2d(inter, **f)
        self.fc2 = nn.Conv2d(inter, out * radix, 1, groups=cardinality, **f)
        self.gate = RadixSoftmax(radix, cardinality)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.bn0(self.conv(x)))  # (B, R·C_out, H, W)
        B, RC, H, W = x.shape
        splits = x.reshape(B, self.radix, RC // self.radix, H, W)  # (B, R, C_out, H, W)
        s = splits.sum(dim=1).mean(dim=(2, 3), keepdim=True)  # (B, C_out, 1, 1)
        attn = self.gate(self.fc2(self.act(self.bn1(self.fc1(s)))).flatten(1))  # (B, R·C_out)
        return (splits * attn.view(B, self.radix, -1, 1, 1)).sum(dim=1)
