"""SAN's second-order channel attention, SOCA (Dai, Cai, Zhang, Xia, Zhang; CVPR 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import ChannelMLP, check_channels, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "soca",
    category="channel",
    paper="Second-order Attention Network for Single Image Super-Resolution",
    venue="CVPR",
    year=2019,
    url="https://openaccess.thecvf.com/content_CVPR_2019/html/Dai_Second-Order_Attention_Network_for_Single_Image_Super-Resolution_CVPR_2019_paper.html",
)
class SecondOrderChannelAttention(nn.Module):
    """SOCA: channel weights from the square root of the channels' covariance instead of their means.

        Σ = X Ī Xᵀ,  Ī = (I − 1/M · 11ᵀ) / M            covariance of the M = H·W positions           (B, C, C)
        A = Σ / tr(Σ)                                   pre-normalization
        Y_0 = A, Z_0 = I;  T_n = ½(3I − Z_{n−1} Y_{n−1}),  Y_n = Y_{n−1} T_n,  Z_n = T_n Z_{n−1}
        Y ≈ A^½ after ``iterations`` = 5 steps (the last computes Y only);  Ŷ = √tr(Σ) · Y  post-compensation
        z_c = mean_i Ŷ_ic                               global covariance pooling                     (B, C, 1, 1)
        out = σ(W_U δ(W_D z)) · x                       SE-style gate: 1×1 convs with biases

    As the official code (daitao/SAN, TrainCode/model/san.py, SOCA, with MPNCOV's Covpool and Sqrtm): 5
    Newton-Schulz iterations (``SqrtmLayer(cov_mat, 5)``), the mean over Ŷ's rows (``torch.mean(·, 1)``),
    and only the central 1000×1000 crop of a larger map pooled (``max_size``). The reduction is r = 16, what
    SAN builds its SOCA with (option.py ``--reduction 16``; the class's own default, and the survey code's, is
    8); the hidden width C // r is at least 1. Where official code and a plug-in differ: the trace is clamped
    at 1e-12, so a map with no spread (1×1, constant) gives Ŷ = 0 instead of the official code's 0/0; Σ is
    computed as the centred features' Gram matrix / M (the same Σ without the M×M matrix Ī); the official
    ``iterN = 1`` branch returns ½(3I − A), here one step gives ½A(3I − A). The weights pass through ``gate``.
    Parameters: 2C·(C//r) + C//r + C.
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: float = 16,
        iterations: int = 5,
        max_size: int = 1000,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(iterations, name="iterations")
        check_channels(max_size, name="max_size")
        self.iterations = iterations
        self.max_size = max_size
        self.fc = ChannelMLP(channels, reduced(channels, reduction), **factory_kwargs(device, dtype))
        self.gate = nn.Sigmoid()

    def covariance_sqrt(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, C): Σ^½ of the central ``max_size``² crop by Newton-Schulz."""
        B, C, H, W = x.shape
        top, left = max(0, (H - self.max_size) // 2), max(0, (W - self.max_size) // 2)
        x = x[:, :, top : top + self.max_size, left : left + self.max_size]
        flat = x.reshape(B, C, -1)  # (B, C, M)
        centred = flat - flat.mean(dim=-1, keepdim=True)
        m = flat.shape[-1]
        cov = centred @ centred.transpose(1, 2) / m  # (B, C, C)
        trace = (centred.square().sum(dim=(1, 2)) / m).clamp_min(1e-12).view(B, 1, 1)
        idx = torch.arange(C, device=x.device)
        eye3 = 3 * (idx[:, None] == idx[None, :]).to(x.dtype)  # 3I (not torch.eye: ONNX runtimes)
        y, z = cov / trace, None
        for _ in range(self.iterations - 1):
            t = 0.5 * (eye3 - (y if z is None else z @ y))
            y, z = y @ t, (t if z is None else t @ z)
        y = 0.5 * y @ (eye3 - (y if z is None else z @ y))
        return y * trace.sqrt()

    def forward(self, x: Tensor) -> Tensor:
        B, C = x.shape[:2]
        pooled = self.covariance_sqrt(x).mean(dim=1).view(B, C, 1, 1)
        return x * self.gate(self.fc(pooled))
