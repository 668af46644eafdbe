"""EncNet's context encoding module (Zhang, Dana, Shi, Zhang, Wang, Tyagi, Agrawal; CVPR 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._shared import check_channels, factory_kwargs
from .registry import register_attention


@register_attention(
    "encnet",
    category="channel",
    paper="Context Encoding for Semantic Segmentation",
    venue="CVPR",
    year=2018,
    url="https://arxiv.org/abs/1803.08904",
)
class ContextEncoding(nn.Module):
    """Context encoding: soft-assign every position to K learned codewords, gate the channels from the encoding.

        X = ReLU(BN(conv1×1(x)))                      the N = H·W features x_i ∈ R^C        (B, N, C)
        a_ik = softmax_k(s_k ‖x_i − d_k‖²)            assignment to codewords d_k, scales s_k (B, N, K)
        e_k = Σ_i a_ik (x_i − d_k)                    Encoding layer                         (B, K, C)
        e = mean_k ReLU(BN_K(e_k))                    BN over the K codewords                 (B, C)
        γ = σ(W e + b)                                channel gate: an FC C -> C              (B, C, 1, 1)
        out = ReLU(x + x · γ)

    K = 32 codewords (the official code's ``ncodes``), as its ``EncModule`` (zhanghang1989/PyTorch-Encoding,
    encoding/models/sseg/encnet.py) and ``Encoding`` (encoding/nn/encoding.py): the bias-free 1×1 conv, BN and
    ReLU before the encoding, d_k ~ U(±1/√(KC)), s_k ~ U(−1, 0). Where paper and official code differ this
    follows the code: the paper writes exp(−s_k‖r_ik‖²) and its code softmax(s_k‖r_ik‖²) with negative s_k;
    the paper sums the K encodings, the code averages them; the paper's output is x · γ, the code's
    ReLU(x + x · γ). The paper's SE-loss (an FC e -> classes trained on which classes an image holds) is a
    training loss, not part of the module, and is left out. Its paper puts the module on the backbone's
    output, so in a ResNet it takes the non-local place (on block outputs, with its own residual and ReLU).
    ‖x_i − d_k‖² is computed as ‖x_i‖² − 2 x_i·d_k + ‖d_k‖², so no (B, N, K, C) tensor is built.
    The channel weights γ pass through ``gate``. Parameters: C² + 2C (conv, BN) + KC + K + 2K + C² + C.
    """

    def __init__(self, channels: int, *, num_codes: int = 32, device=None, dtype=None) -> None:
        super().__init__()
        check_channels(channels)
        check_channels(num_codes, name="num_codes")
        f = factory_kwargs(device, dtype)
        self.project = nn.Conv2d(channels, channels, 1, bias=False, **f)
        self.project_bn = nn.BatchNorm2d(channels, **f)
        self.codewords = nn.Parameter(torch.empty(num_codes, channels, **f))  # d_k (K, C)
        self.scale = nn.Parameter(torch.empty(num_codes, **f))  # s_k (K,)
        self.encoding_bn = nn.BatchNorm1d(num_codes, **f)
        self.fc = nn.Linear(channels, channels, **f)
        self.gate = nn.Sigmoid()
        bound = (num_codes * channels) ** -0.5
        nn.init.uniform_(self.codewords, -bound, bound)
        nn.init.uniform_(self.scale, -1.0, 0.0)

    def encode(self, feat: Tensor) -> Tensor:
        """The Encoding layer: (B, N, C) features -> (B, K, C) aggregated residuals."""
        d = self.codewords
        dist = feat.square().sum(-1, keepdim=True) - 2 * feat @ d.t() + d.square().sum(-1)  # (B, N, K)
        assign = torch.softmax(self.scale * dist, dim=-1)  # (B, N, K)
        return assign.transpose(1, 2) @ feat - assign.sum(1).unsqueeze(-1) * d  # (B, K, C)

    def forward(self, x: Tensor) -> Tensor:
        B, C = x.shape[:2]
        feat = torch.relu(self.project_bn(self.project(x))).reshape(B, C, -1).transpose(1, 2)  # (B, N, C)
        encoded = torch.relu(self.encoding_bn(self.encode(feat))).mean(dim=1)  # (B, C)
        gamma = self.gate(self.fc(encoded).view(B, C, 1, 1))
        return torch.relu(x + x * gamma)
