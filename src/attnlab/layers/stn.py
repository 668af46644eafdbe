"""Spatial transformer networks (Jaderberg, Simonyan, Zisserman, Kavukcuoglu; NeurIPS 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


def affine_grid(theta: Tensor, height: int, width: int) -> Tensor:
    """Sampling grid T_θ(G), Eq. 1: θ (B, 2, 3) -> (B, H, W, 2) normalized source (x, y), as
    ``F.affine_grid(θ, size, align_corners=False)`` (pixel centres at (2i + 1)/n − 1), in plain tensor ops: the
    ONNX exporter has no affine grid before opset 20."""
    xs = (2 * torch.arange(width, device=theta.device, dtype=theta.dtype) + 1) / width - 1
    ys = (2 * torch.arange(height, device=theta.device, dtype=theta.dtype) + 1) / height - 1
    target = torch.stack(
        [xs.expand(height, width), ys[:, None].expand(height, width), torch.ones_like(xs).expand(height, width)],
        dim=-1,
    )  # (H, W, 3): target (x_t, y_t, 1)
    return torch.einsum("hwj,bij->bhwi", target, theta)


def adaptive_avg_pool(x: Tensor, size: int) -> Tensor:
    """``F.adaptive_avg_pool2d(x, size)`` as two matrix products with bin-averaging matrices: the same bins
    (start ⌊i·n/s⌋, end ⌈(i+1)·n/s⌉), and an ONNX export at any H×W (torch's exporter refuses adaptive
    pooling when s does not divide the size)."""

    def bins(n: int) -> Tensor:
        i = torch.arange(size, device=x.device)
        start, end = (i * n) // size, ((i + 1) * n + size - 1) // size
        j = torch.arange(n, device=x.device)
        inside = ((j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])).to(x.dtype)  # (s, n)
        return inside / inside.sum(dim=1, keepdim=True)

    return torch.einsum("ih,bchw,jw->bcij", bins(x.shape[-2]), x, bins(x.shape[-1]))


@register_attention(
    "stn",
    category="spatial",
    paper="Spatial Transformer Networks",
    venue="NeurIPS",
    year=2015,
    url="https://arxiv.org/abs/1506.02025",
)
class SpatialTransformer(nn.Module):
    """Spatial transformer: a localisation net regresses an affine θ per input, which resamples the map.

        θ = f_loc(x) = W2 ReLU(W1 vec(AdaptiveAvgPool_s×s(x))) + b2       (B, 2, 3), Sec. 3.1
        (x_s, y_s)ᵀ = θ (x_t, y_t, 1)ᵀ for every target pixel              Eq. 1: the grid, (B, H, W, 2)
        out_c(t) = Σ_n,m x_c(n, m) max(0, 1 − |x_s − m|) max(0, 1 − |y_s − n|)    Eq. 5: bilinear, zeros outside

    The paper leaves f_loc to the task ("any form": conv or fully connected layers ending in a regression
    layer). As a plug-in on feature maps of any H×W it needs a fixed-length input: an adaptive average pool
    to an s×s grid (``pool_size`` s = 4) keeps a coarse layout of where the content lies, which a global
    pool (s = 1) would lose, θ then depending on channel statistics only; a 1×1 map is repeated over the
    grid. Then FC 16C -> 32, ReLU, FC 32 -> 6 (``hidden`` = 32, the PyTorch STN tutorial's ``fc_loc``). The
    last FC starts at zero weights and the identity's bias (1, 0, 0, 0, 1, 0), so the module starts as
    the identity (the paper's initialisation): with ``align_corners=False`` pixel centres map to
    themselves and the output equals the input. Coordinates are normalized to [−1, 1]; the grid is built
    with plain tensor ops and sampled with ``grid_sample`` (ONNX GridSample, opset 16; attnlab exports at
    17). The survey's code takes θ as an input and has no localisation net. In a ResNet it warps the whole
    feature map between stages (placement "stage"), as the paper's ST-CNN inserts transformers between
    layers, not inside a residual branch. θ passes through ``gate`` (an identity), (B, 2, 3): no spatial map.
    Parameters: s²·C·hidden + hidden + 6·hidden + 6.
    """

    def __init__(self, channels: int, *, pool_size: int = 4, hidden: int = 32, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(pool_size, name="pool_size")
        check_channels(hidden, name="hidden")
        f = factory_kwargs(device, dtype)
        self.pool_size = pool_size
        self.fc1 = nn.Linear(channels * pool_size**2, hidden, **f)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 6, **f)
        nn.init.zeros_(self.fc2.weight)
        with torch.no_grad():
            self.fc2.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
        self.gate = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        z = adaptive_avg_pool(x, self.pool_size).flatten(1)  # (B, s²·C)
        theta = self.gate(self.fc2(self.relu(self.fc1(z))).view(-1, 2, 3))  # (B, 2, 3)
        grid = affine_grid(theta, H, W)  # (B, H, W, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
