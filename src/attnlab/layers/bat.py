"""BAT: non-local blocks with grouped bilinear attentional transforms (Chi, Yuan, Mu, Wang; CVPR 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, largest_groups, reduced
from .registry import register_attention


def _conv_bn_relu(cin: int, cout: int, bias: bool, f: dict) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=bias, **f), nn.BatchNorm2d(cout, **f), nn.ReLU())


@register_attention(
    "bat",
    category="spatial",
    paper="Non-Local Neural Networks With Grouped Bilinear Attentional Transforms",
    venue="CVPR",
    year=2020,
    url="https://openaccess.thecvf.com/content_CVPR_2020/html/Chi_Non-Local_Neural_Networks_With_Grouped_Bilinear_Attentional_Transforms_CVPR_2020_paper.html",
)
class BilinearAttentionalTransform(nn.Module):
    """BAT block: each group of channels is mixed along rows by P and along columns by Q, s×s transforms of bins.

        X' = ReLU(BN(W_1 x))                                   (B, C', H, W)     C' = C / r
        Z = ReLU(BN(W_z X'))                                   (B, k, H, W)      one map per group
        P = σ(conv_{s×1}(maxpool to s rows (Z))), rows summing to 1      (B, k, s, s)
        Q = σ(conv_{1×s}(maxpool to s columns (Z))), columns summing to 1 (B, k, s, s)
        Y_g = (P_g ⊗ I_t) X'_g (Q_g ⊗ I_t)                     each group's C'/k channels, t = H / s (W / s for Q)
        out = x + Dropout2d(ReLU(BN(W_2 ReLU(BN(W_3 Y)))))    W_3: C' -> C', W_2: C' -> C

    P ⊗ I_t sends bin j of t rows to bin i with weight P_ij, row by row within the bins. Defaults are the official
    code's (BA-Transform/BAT-Image-Classification, ``BATBlock``, ``main.py``): r = 2, s = 7, k = 4 groups, dropout
    0.2 (its README: for networks deeper than ResNet-34), biases on every 1×1 conv; where k does not divide C' the
    largest divisor of C' below it is used. timm's ``BatNonLocalAttn`` is the same computation with its own
    defaults: C' = C/4 rounded to a multiple of 8, k = 2, no biases before the BNs (``bias=False``). Both need H and W
    multiples of s (the official code even H = W); here the map is zero-padded to the next multiples (the pooling
    bins are then those of the padded map, and the output is cropped), so any H×W works and multiples of s give
    their output. In a ResNet the official code puts it after every other block of res3 and res4 (``--nl_mod 2 2
    1000``). The normalized transforms pass through ``gates.rows`` (P) and ``gates.cols`` (Q) as (B, k, s·s):
    matrices between bins, not maps over positions.
    Parameters: C·C' + C' + 2C' + C'·k + k + 2k + 2·(s·k·s²k + s²k) + C'² + C' + 2C' + C'·C + C + 2C (with biases).
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: float = 2,
        block_size: int = 7,
        groups: int = 4,
        drop_rate: float = 0.2,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(block_size, name="block_size")
        check_channels(groups, name="groups")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate: expected a value in [0, 1), got {drop_rate}")
        f = factory_kwargs(device, dtype)
        inter = reduced(channels, reduction)
        s, k = block_size, largest_groups(inter, groups)
        self.block_size, self.groups = s, k
        self.conv1 = _conv_bn_relu(channels, inter, bias, f)
        self.reduce = _conv_bn_relu(inter, k, bias, f)  # W_z
        self.conv_p = nn.Conv2d(k, s * s * k, (s, 1), **f)
        self.conv_q = nn.Conv2d(k, s * s * k, (1, s), **f)
        self.transform = _conv_bn_relu(inter, inter, bias, f)  # W_3
        self.conv2 = _conv_bn_relu(inter, channels, bias, f)
        self.dropout = nn.Dropout2d(drop_rate)
        self.gates = nn.ModuleDict({"rows": nn.Identity(), "cols": nn.Identity()})
        for m in self.modules():  # the official init_modules: He (fan-out) convs; BNs at 1 and 0 (their default)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return x + self.dropout(self.conv2(self.bilinear(self.conv1(x))))

    def bilinear(self, x: Tensor) -> Tensor:
        """The grouped bilinear transform of X' (B, C', H, W), Y = P X' Q by groups, then W_3 (+ BN, ReLU)."""
        B, C, H, W = x.shape
        s, k = self.block_size, self.groups
        th, tw = (H + s - 1) // s, (W + s - 1) // s  # rows, columns per bin of the map padded to multiples of s
        pad = (0, s * tw - W, 0, s * th - H)
        z = F.pad(self.reduce(x), pad)  # (B, k, s·th, s·tw), >= 0: the zero padding wins no max
        x = F.pad(x, pad)
        rows = z.reshape(B, k, s, th, s * tw).amax(dim=(3, 4))  # max over each bin of rows (B, k, s)
        cols = z.reshape(B, k, s * th, s, tw).amax(dim=(2, 4))
        p = torch.sigmoid(self.conv_p(rows.unsqueeze(-1)).reshape(B, k, s, s))
        q = torch.sigmoid(self.conv_q(cols.unsqueeze(-2)).reshape(B, k, s, s))
        p = self.gates["rows"]((p / p.sum(dim=3, keepdim=True)).flatten(2)).reshape(B, k, s, s)
        q = self.gates["cols"]((q / q.sum(dim=2, keepdim=True)).flatten(2)).reshape(B, k, s, s)
        xg = x.reshape(B, k, C // k, s, th, s, tw)  # (B, groups, C'/k, row bin, row in bin, column bin, column in bin)
        y = torch.einsum("bgij,bgcjaJe->bgciaJe", p, xg)  # (P ⊗ I) X' first, then · (Q ⊗ I): timm's order
        y = torch.einsum("bgciaJe,bgJI->bgciaIe", y, q).reshape(B, C, s * th, s * tw)
        return self.transform(y[:, :, :H, :W])
