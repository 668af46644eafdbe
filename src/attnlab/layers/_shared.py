"""Small pieces several attention modules share."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "check_channels",
    "check_frames",
    "check_odd",
    "depthwise_strips",
    "largest_groups",
    "reduced",
    "ChannelMLP",
    "ZPool",
    "SpatialConvGate",
    "factory_kwargs",
]


def factory_kwargs(device: torch.device | str | None, dtype: torch.dtype | None) -> dict:
    return {"device": device, "dtype": dtype}


def check_channels(channels: int, *, multiple_of: int = 1, name: str = "channels") -> int:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
        raise ValueError(f"{name}: expected a positive int, got {channels!r}")
    if channels % multiple_of:
        raise ValueError(f"{name}: expected a multiple of {multiple_of}, got {channels}")
    return channels


def reduced(channels: int, reduction: float, min_channels: int = 1) -> int:
    """Hidden width C / r of a bottleneck, at least ``min_channels``."""
    if reduction <= 0:
        raise ValueError(f"reduction: expected a positive number, got {reduction}")
    return max(min_channels, int(channels // reduction))


class ChannelMLP(nn.Sequential):
    """1×1 conv C -> hidden, activation, 1×1 conv hidden -> C: the shared MLP of SE-style excitations."""

    def __init__(
        self,
        channels: int,
        hidden: int,
        *,
        bias: bool = True,
        act_layer: type[nn.Module] = nn.ReLU,
        device=None,
        dtype=None,
    ) -> None:
        f = factory_kwargs(device, dtype)
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=bias, **f)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=bias, **f)


class ZPool(nn.Module):
    """(B, C, H, W) -> (B, 2, H, W): max and mean over channels (CBAM's ChannelPool, Triplet's Z-pool).

    The max is ``torch.max`` with indices, as both official codes: its backward scatters the gradient to the
    argmax (a tie sends it to one element), cheaper than ``amax``'s mask-and-divide backward.
    """

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x.max(dim=1, keepdim=True).values, x.mean(dim=1, keepdim=True)], dim=1)


class SpatialConvGate(nn.Module):
    """σ(BN(conv_k×k([max_c x; mean_c x]))) -> (B, 1, H, W): CBAM's spatial gate, one branch of Triplet.

    The BN (eps 1e-5, momentum 0.01) and the bias-free conv are those of both papers' official code.
    """

    def __init__(self, kernel_size: int = 7, *, device=None, dtype=None) -> None:
        super().__init__()
        check_odd(kernel_size)
        f = factory_kwargs(device, dtype)
        self.pool = ZPool()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False, **f)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01, **f)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return self.gate(self.bn(self.conv(self.pool(x))))


def check_odd(kernel_size: int, name: str = "kernel_size") -> int:
    """A kernel width that keeps the length with padding k // 2: a positive odd int."""
    if kernel_size <= 0 or kernel_size % 2 == 0:
        raise ValueError(f"{name}: expected a positive odd int, got {kernel_size}")
    return kernel_size


def check_frames(x: Tensor, num_frames: int, name: str) -> int:
    """The clip count B of a per-frame batch (B·T, C, H, W); refuses a batch that is not whole clips."""
    if x.shape[0] % num_frames:
        raise ValueError(
            f"{name}: expected a batch of whole clips, (B·T, C, H, W) with T = num_frames = {num_frames}, "
            f"got {x.shape[0]} frames"
        )
    return x.shape[0] // num_frames


def depthwise_strips(channels: int, kernel_size: int, *, device=None, dtype=None) -> tuple[nn.Conv2d, nn.Conv2d]:
    """Bias-free depth-wise k×1 and 1×k convs with k // 2 zero padding: the strips of timm's ELA and StripAttn."""
    check_odd(kernel_size)
    f = factory_kwargs(device, dtype)
    pad = kernel_size // 2
    along_h = nn.Conv2d(channels, channels, (kernel_size, 1), padding=(pad, 0), groups=channels, bias=False, **f)
    along_w = nn.Conv2d(channels, channels, (1, kernel_size), padding=(0, pad), groups=channels, bias=False, **f)
    return along_h, along_w


def largest_groups(channels: int, groups: int, per_group: int = 1) -> int:
    """The largest g <= ``groups`` with ``channels`` a multiple of g · ``per_group``; ValueError when there is none:
    a module's default grouping where it divides the width, else the nearest grouping below it that does."""
    check_channels(groups, name="groups")
    for g in range(groups, 0, -1):
        if channels % (g * per_group) == 0:
            return g
    raise ValueError(f"channels: expected a multiple of {per_group}, got {channels}")
