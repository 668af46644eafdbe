"""BAM: Bottleneck Attention Module (Park, Woo, Lee, Kweon; BMVC 2018)."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "bam",
    category="channel_spatial",
    paper="BAM: Bottleneck Attention Module",
    venue="BMVC",
    year=2018,
    url="https://arxiv.org/abs/1807.06514",
)
class BAM(nn.Module):
    """BAM: parallel channel and spatial branches, one 3-D attention map, a residual refinement.

        M_c = MLP(AvgPool(x))                                       Eq. 3, MLP C -> C/r -> C      (B, C, 1, 1)
        M_s = f₃¹ˣ¹(f₂³ˣ³(f₁³ˣ³(f₀¹ˣ¹(x))))                         Eq. 4, dilation 4             (B, 1, H, W)
        M = σ(M_c ⊗ M_s)
        out = x + x ⊗ M = x ⊗ (1 + M)                                Eq. 1: the paper's own residual

    r = 16, dilation 4, two dilated convs: the paper's defaults. The paper and the official code differ
    in two places and attnlab follows the code: the branches are multiplied (Eq. 2 adds them), and the
    branch outputs have no final BN (Eq. 3-4 end in one); every hidden layer has BN + ReLU as in both.
    In a ResNet BAM sits between stages (at each bottleneck of the network), placement "stage". The map M
    passes through ``gate``. Parameters: channel 2C²/r + 3C/r + C, spatial C²/r + 18(C/r)² + 10C/r + 1.
    """

    def __init__(
        self, channels: int, *, reduction: float = 16, dilation: int = 4, num_dilated: int = 2, device=None, dtype=None
    ) -> None:
        super().__init__()
        check_channels(channels)
        f = factory_kwargs(device, dtype)
        hidden = reduced(channels, reduction)
        self.channel_att = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, hidden, **f),
            nn.BatchNorm1d(hidden, **f),
            nn.ReLU(),
            nn.Linear(hidden, channels, **f),
        )
        layers: list[nn.Module] = [nn.Conv2d(channels, hidden, 1, **f), nn.BatchNorm2d(hidden, **f), nn.ReLU()]
        for _ in range(num_dilated):
            layers += [
                nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation, **f),
                nn.BatchNorm2d(hidden, **f),
                nn.ReLU(),
            ]
        layers.append(nn.Conv2d(hidden, 1, 1, **f))
        self.spatial_att = nn.Sequential(*layers)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        B, C = x.shape[:2]
        m_c = self.channel_att(x.mean(dim=(2, 3))).view(B, C, 1, 1)
        m_s = self.spatial_att(x)  # (B, 1, H, W)
        return x * (1 + self.gate(m_c * m_s))
