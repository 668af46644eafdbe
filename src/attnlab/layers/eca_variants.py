"""timm's two variants of ECA (Wang et al., CVPR 2020) that its attention factory knows: ``ceca``, the 1-D
convolution across channels with circular padding, and ``ecam``, a small MLP in its place. Neither has a paper
of its own (timm's ``layers/eca.py`` calls both its experiments); they are here, named as timm names them, so a
timm network's attention can be rebuilt and compared on one recipe."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, check_odd, factory_kwargs
from .eca import eca_kernel_size
from .registry import register_attention

ECA_PAPER = {
    "paper": "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
    "venue": "CVPR",
    "year": 2020,
    "url": "https://arxiv.org/abs/1910.03151",
}


def timm_kernel_size(channels: int) -> int:
    """ECA's adaptive k (Eq. 12), floored at 3 as timm floors it."""
    return max(eca_kernel_size(channels), 3)


def timm_divisible(value: float, divisor: int = 8) -> int:
    """timm's ``make_divisible``: the nearest multiple of ``divisor`` (at least one), raised by one multiple when
    rounding lost more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@register_attention("ceca", category="channel", **ECA_PAPER)
class CircularECA(nn.Module):
    """ECA with circular padding (timm's ``CecaModule``): the channels have no ends, so the first and the last
    see each other across the wrap.

        y = GAP(x)                                  (B, 1, C)
        w = σ(conv1d_k(pad_circular(y, k // 2)))    k = max(ψ(C), 3)
        out = w · x

    Parameters: k (no bias).
    """

    def __init__(self, channels: int, *, kernel_size: int | None = None, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        k = check_odd(timm_kernel_size(channels) if kernel_size is None else kernel_size)
        self.padding = k // 2
        self.conv = nn.Conv1d(1, 1, k, bias=False, **factory_kwargs(device, dtype))
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        B, C = x.shape[:2]
        y = F.pad(x.mean(dim=(2, 3)).view(B, 1, C), (self.padding, self.padding), mode="circular")
        return x * self.gate(self.conv(y)).view(B, C, 1, 1)


@register_attention("ecam", category="channel", **ECA_PAPER)
class ECAWithMLP(nn.Module):
    """ECA with a small MLP (timm's ``EcaModule(use_mlp=True)``): each pooled channel lifted to d values by a 1×1
    convolution, a ReLU, then the k-wide convolution across channels back to one.

        y = GAP(x)                                  (B, 1, C)
        h = ReLU(conv1d_1(y))                       (B, d, C), d = C/8 rounded to a multiple of 8
        w = σ(conv1d_k(h))                          (B, 1, C), k = max(ψ(C), 3), zero padding
        out = w · x

    Parameters: 2d + kd + 1 (both convolutions with biases).
    """

    def __init__(self, channels: int, *, kernel_size: int | None = None, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        k = check_odd(timm_kernel_size(channels) if kernel_size is None else kernel_size)
        d, kw = timm_divisible(channels / 8), factory_kwargs(device, dtype)
        self.conv = nn.Conv1d(1, d, 1, **kw)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv1d(d, 1, k, padding=k // 2, **kw)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        B, C = x.shape[:2]
        y = self.conv2(self.act(self.conv(x.mean(dim=(2, 3)).view(B, 1, C))))  # (B, 1, C)
        return x * self.gate(y).view(B, C, 1, 1)
