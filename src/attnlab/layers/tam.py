"""TAM, the temporal adaptive module (Liu, Wang, Wu, Qian, Lu; ICCV 2021; TANet)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, check_frames, check_odd, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "tam",
    category="temporal",
    paper="TAM: Temporal Adaptive Module for Video Recognition",
    venue="ICCV",
    year=2021,
    url="https://arxiv.org/abs/2005.06803",
)
class TemporalAdaptive(nn.Module):
    """TAM on per-frame maps (B·T, C, H, W), ``num_frames`` = T: a video-specific temporal convolution.

    Each channel's frame descriptors s = GAP(x) ∈ R^T (B, C, T) feed two branches (Sec. 3.2):

        local:   v = σ(Conv1d_{C/β→C}(ReLU(BN(Conv1d_{C→C/β, k=K}(s)))))      location-sensitive importance
        global:  κ = softmax(FC_{2T→K}(ReLU(BN(FC_{T→2T}(s)))))              a K-tap kernel per channel and clip
        out_t = Σ_k κ_k · (v ⊙ x)_{t+k-⌊K/2⌋}                                  Eq. 6: temporal adaptive aggregation

    Defaults are the paper's and the official code's (liu-zhy/temporal-adaptive-module, ``ops/temporal_module.py``):
    K = 3 (the width of both the local conv and the global kernel, as the code), α = 2 (FC width 2T), β = 4, no
    biases; zero padding in time. The importance map v (B, C, T) passes through ``gate``. There is no residual:
    TANet puts TAM after the first convolution of every residual block (the ResNet's "after_conv1" placement).
    Parameters: 2T² + 4T + 2T·K (global) + (K + 1)·C²/β + 2·C/β (local): 4,336 at C = 64, T = 8, K = 3.
    """

    def __init__(
        self,
        channels: int,
        num_frames: int = 8,
        *,
        kernel_size: int = 3,
        alpha: int = 2,
        beta: int = 4,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(num_frames, name="num_frames")
        check_odd(kernel_size)
        f = factory_kwargs(device, dtype)
        hidden = reduced(channels, beta)
        self.num_frames, self.kernel_size = num_frames, kernel_size
        self.global_branch = nn.Sequential(
            nn.Linear(num_frames, num_frames * alpha, bias=False, **f),
            nn.BatchNorm1d(num_frames * alpha, **f),
            nn.ReLU(inplace=True),
            nn.Linear(num_frames * alpha, kernel_size, bias=False, **f),
            nn.Softmax(dim=-1),
        )
        self.local_branch = nn.Sequential(
            nn.Conv1d(channels, hidden, kernel_size, padding=kernel_size // 2, bias=False, **f),
            nn.BatchNorm1d(hidden, **f),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, channels, 1, bias=False, **f),
            nn.Sigmoid(),
        )
        self.gate = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        T, K = self.num_frames, self.kernel_size
        B = check_frames(x, T, "TAM input")
        _, C, H, W = x.shape
        clips = x.view(B, T, C, H, W).transpose(1, 2)  # (B, C, T, H, W)
        s = clips.mean((-1, -2))  # (B, C, T)
        kernel = self.global_branch(s.reshape(B * C, T))  # (B·C, K)
        importance = self.gate(self.local_branch(s))  # (B, C, T)
        weighted = clips * importance[..., None, None]
        # the K-tap kernel of each (clip, channel) as K shifted, weighted copies (no per-sample convolution
        # weights, which ONNX cannot take): out_t = Σ_k κ_k · weighted_{t + k - K//2}, zeros outside the clip
        padded = F.pad(weighted, (0, 0, 0, 0, K // 2, K // 2))  # (B, C, T + K - 1, H, W)
        kappa = kernel.view(B, C, K, 1, 1, 1)
        out = sum(kappa[:, :, k] * padded[:, :, k : k + T] for k in range(K))
        return out.transpose(1, 2).reshape(B * T, C, H, W)
