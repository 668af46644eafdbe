"""Polarized self-attention (Liu, Liu, Fan, Huang; Neurocomputing 2022, arXiv 2107.00782)."""

from __future__ import annotations

from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs, reduced
from .registry import register_attention

LAYOUTS = ("parallel", "sequential")


@register_attention(
    "psa",
    category="channel_spatial",
    paper="Polarized Self-Attention: Towards High-quality Pixel-wise Regression",
    venue="Neurocomputing",
    year=2022,
    url="https://arxiv.org/abs/2107.00782",
)
class PolarizedSelfAttention(nn.Module):
    """Polarized self-attention: a channel-only and a spatial-only branch, each collapsing the other axis.

        channel-only:         v = W_v x (B, C/2, N),  q = softmax_N(W_q x) (B, 1, N)    W_q: C -> 1, W_v: C -> C/2
                              A^ch = σ(W_z(v qᵀ))                                       (B, C, 1, 1)
        spatial-only:         g = GAP(W_q' x) (B, 1, C/2),  θ = W_v' x (B, C/2, N)      W_q', W_v': C -> C/2
                              A^sp = σ(softmax_N(g θ)) (PSA_p), σ(g softmax_N(θ)) (PSA_s)  (B, 1, H, W)
        parallel:             out = A^ch ⊙ x + A^sp ⊙ x
        sequential:           x' = A^ch ⊙ x,  out = A^sp(x') ⊙ x'

    Each layout follows its own class of the official code (DeLightCMU/PSA, semantic-segmentation/network/PSA.py),
    which departs from the paper's equations, and the two classes from each other:

    - ``layout="parallel"`` (default) is ``PSA_p``: W_z is one bias-free 1×1 conv C/2 -> C, without the paper's
      LayerNorm (the paper: A^ch = σ(LN(W_z(v qᵀ)))); the spatial branch applies its softmax over the N positions
      of the product g θ, where the paper softmaxes the pooled query g over its C/2 channels (σ(softmax_C/2(g) θ)).
    - ``layout="sequential"`` is ``PSA_s``: W_z is C/2 -> C/8 (with biases), LayerNorm over (C/8, 1, 1), ReLU,
      C/8 -> C; the spatial softmax runs over the N positions of each channel of θ, before the product.

    The official network file (hrnetv2.py) builds ``PSA_s``: sequential is the official code's choice in use; the
    README reports both, the parallel one slightly ahead. That file puts PSA after the first 3×3 conv (+ BN + ReLU)
    of every residual block (HRNet's BasicBlock), attnlab's "after_conv1" place (in a bottleneck: after its 1×1).
    C/2 and C/8 round down, at least 1. The four q/v convs are bias-free and start Kaiming-normal (fan_in), as the
    official ``reset_parameters``. Official names: ch_wq, ch_wv, ch_wz = conv_q_right, conv_v_right, conv_up;
    sp_wq, sp_wv = conv_q_left, conv_v_left. Gates: ``gates.channel`` (B, C, 1, 1), ``gates.spatial`` (B, 1, H, W).
    Parameters: parallel C + 4·C·C/2 (= C + 2C² for even C); sequential C + 3·C·C/2 + (C/2·C/8 + C/8)
    + 2·C/8 + (C/8·C + C).
    """

    def __init__(self, channels: int, *, layout: str = "parallel", device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        if layout not in LAYOUTS:
            raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
        f = factory_kwargs(device, dtype)
        inter = reduced(channels, 2)  # the official inter_planes = planes // 2
        self.layout = layout
        self.ch_wq = nn.Conv2d(channels, 1, 1, bias=False, **f)
        self.ch_wv = nn.Conv2d(channels, inter, 1, bias=False, **f)
        if layout == "parallel":
            self.ch_wz = nn.Conv2d(inter, channels, 1, bias=False, **f)
        else:
            hidden = reduced(inter, 4)  # PSA_s: inter_planes // ratio, ratio = 4
            self.ch_wz = nn.Sequential(
                nn.Conv2d(inter, hidden, 1, **f),
                nn.LayerNorm([hidden, 1, 1], **f),
                nn.ReLU(),
                nn.Conv2d(hidden, channels, 1, **f),
            )
        self.sp_wq = nn.Conv2d(channels, inter, 1, bias=False, **f)
        self.sp_wv = nn.Conv2d(channels, inter, 1, bias=False, **f)
        self.gates = nn.ModuleDict({"channel": nn.Sigmoid(), "spatial": nn.Sigmoid()})
        for conv in (self.ch_wq, self.ch_wv, self.sp_wq, self.sp_wv):
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")

    def channel_only(self, x: Tensor) -> Tensor:
        """A^ch ⊙ x: the positions collapse, C stays."""
        B, C, H, W = x.shape
        v = self.ch_wv(x).reshape(B, -1, H * W)  # (B, C/2, N)
        q = self.ch_wq(x).reshape(B, 1, H * W).softmax(dim=-1)  # (B, 1, N)
        z = (v @ q.transpose(1, 2)).unsqueeze(-1)  # (B, C/2, 1, 1)
        return x * self.gates["channel"](self.ch_wz(z))

    def spatial_only(self, x: Tensor) -> Tensor:
        """A^sp ⊙ x: the channels collapse, H×W stays."""
        B, C, H, W = x.shape
        g = self.sp_wq(x).mean(dim=(2, 3)).unsqueeze(1)  # (B, 1, C/2)
        theta = self.sp_wv(x).reshape(B, -1, H * W)  # (B, C/2, N)
        # PSA_p: softmax of the product over N; PSA_s: softmax of each channel of θ over N, then the product
        logits = (g @ theta).softmax(dim=-1) if self.layout == "parallel" else g @ theta.softmax(dim=-1)
        return x * self.gates["spatial"](logits.reshape(B, 1, H, W))

    def forward(self, x: Tensor) -> Tensor:
        if self.layout == "parallel":
            return self.channel_only(x) + self.spatial_only(x)
        return self.spatial_only(self.channel_only(x))
