"""timm's light CBAM (``LightCbamModule``), the ``lcbam`` of its attention factory: CBAM (Woo et al., ECCV 2018)
with each gate's two poolings averaged before the gate's layers instead of passed through them apart. timm calls
it an experiment; it has no paper of its own."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import ChannelMLP, check_channels, check_odd, factory_kwargs
from .registry import register_attention


@register_attention(
    "lcbam",
    category="channel_spatial",
    paper="CBAM: Convolutional Block Attention Module",
    venue="ECCV",
    year=2018,
    url="https://arxiv.org/abs/1807.06521",
)
class LightCBAM(nn.Module):
    """Light CBAM: one pooled descriptor per gate, the mean of the average and the max pool.

        z_c = ½ GAP(x) + ½ GMP(x)                           (B, C, 1, 1)
        x' = σ(W2 δ(W1 z_c)) · x                            channel gate, MLP C -> C/16 -> C without biases
        z_s = ½ mean_C(x') + ½ max_C(x')                    (B, 1, H, W)
        out = σ(BN(conv7×7(z_s))) · x'                      spatial gate, one input channel (CBAM's: two)

    Widths as timm's defaults: C/16 rounded to the nearest int, no MLP biases, a bias-free 7×7 conv and a BN.
    Parameters: 2C·round(C/16) + 49 + 2. Gates: ``gates.channel`` (B, C, 1, 1), ``gates.spatial`` (B, 1, H, W).
    """

    def __init__(self, channels: int, *, reduction: float = 16, kernel_size: int = 7, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        check_odd(kernel_size)
        f = factory_kwargs(device, dtype)
        hidden = max(1, int(channels / reduction + 0.5))  # timm's make_divisible with divisor 1
        self.mlp = ChannelMLP(channels, hidden, bias=False, **f)
        self.conv = nn.Conv2d(1, 1, kernel_size, padding=kernel_size // 2, bias=False, **f)
        self.bn = nn.BatchNorm2d(1, **f)
        self.gates = nn.ModuleDict({"channel": nn.Sigmoid(), "spatial": nn.Sigmoid()})

    def forward(self, x: Tensor) -> Tensor:
        pooled = 0.5 * x.mean(dim=(2, 3), keepdim=True) + 0.5 * x.amax(dim=(2, 3), keepdim=True)
        x = x * self.gates["channel"](self.mlp(pooled))
        across = 0.5 * x.mean(dim=1, keepdim=True) + 0.5 * x.amax(dim=1, keepdim=True)
        return x * self.gates["spatial"](self.bn(self.conv(across)))
