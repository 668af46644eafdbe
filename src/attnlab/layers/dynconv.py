"""Dynamic convolution: attention over convolution kernels (Chen, Dai, Liu, Chen, Yuan, Liu; CVPR 2020)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._shared import check_channels, check_odd, factory_kwargs, reduced
from .registry import register_attention


@register_attention(
    "dynconv",
    category="branch",
    paper="Dynamic Convolution: Attention over Convolution Kernels",
    venue="CVPR",
    year=2020,
    url="https://arxiv.org/abs/1912.03458",
)
class DynamicConv(nn.Module):
    """Dynamic convolution: K kernels aggregated per input by a softmax attention, then one convolution.

        z = W2 ReLU(W1 GAP(x)) + b2              squeeze, FC C -> C/4 (no bias), ReLU, FC C/4 -> K   (B, K)
        π(x) = softmax(z / τ)                     Σ_k π_k = 1; the weights pass through ``gate``
        W̃(x) = Σ_k π_k(x) W_k                     the aggregated kernel, per sample (B, C_out, C, k, k)
        out = BN(W̃(x) * x)                        the aggregated k×k conv (stride, padding k // 2)

    K = 4 kernels and the squeeze ratio 4 are the paper's. There is no official code; the
    survey's code and the unofficial kaijieshi7/Dynamic-convolution-Pytorch (``Dynamic_conv2d``) make the
    hidden width int(C/4) + 1 and attnlab takes the paper's C/4; both give W1 no bias and W2 one, as here.
    The paper's aggregated bias b̃ is left out and a BN follows the convolution, as in the paper's layer
    (aggregated conv, BN, ReLU) and the unofficial DY-ResNet (bias=False, then BN): in a ResNet this module
    replaces the 3×3 conv and its BN (placement "conv", ``stride``). ``temperature`` τ is an argument and a
    plain attribute: the paper anneals it from 30 to 1 over the first 10 epochs (a training recipe: set
    ``m.temperature`` each epoch); the default is τ = 1, the value the trained network runs at, so a module
    built with defaults computes the paper's model. Each W_k is initialized as an ``nn.Conv2d`` weight.
    Under tracing (ONNX, TorchScript), whose grouped convolution would fix the batch size, the same output
    is computed as Σ_k π_k (W_k * x), K convolutions; otherwise one grouped convolution over the batch, as
    the codes do.
    Parameters: K·C²·k² + C²/4 + K·C/4 + K + 2C (the K kernels, W1, W2 and b2, the BN).
    """

    def __init__(
        self,
        channels: int,
        *,
        stride: int = 1,
        kernel_size: int = 3,
        num_kernels: int = 4,
        reduction: float = 4,
        temperature: float = 1.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_channels(channels)
        check_odd(kernel_size)
        check_channels(num_kernels, name="num_kernels")
        check_channels(stride, name="stride")
        if not temperature > 0:
            raise ValueError(f"temperature: expected a positive number, got {temperature}")
        f = factory_kwargs(device, dtype)
        self.stride = stride
        self.padding = kernel_size // 2
        self.temperature = float(temperature)
        hidden = reduced(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False, **f)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, num_kernels, 1, **f)
        self.gate = nn.Softmax(dim=1)
        self.weight = nn.Parameter(torch.empty(num_kernels, channels, channels, kernel_size, kernel_size, **f))
        for w in self.weight:  # each kernel as nn.Conv2d initializes its weight
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        self.bn = nn.BatchNorm2d(channels, **f)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        K, O = self.weight.shape[:2]
        z = self.fc2(self.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))).flatten(1)  # (B, K)
        pi = self.gate(z / self.temperature)  # (B, K)
        if torch.jit.is_tracing():  # a batch-free graph: K convolutions, weighted by π
            y = F.conv2d(x, self.weight.flatten(0, 1), stride=self.stride, padding=self.padding)  # (B, K·O, H', W')
            out = torch.einsum("bk,bkohw->bohw", pi, y.unflatten(1, (K, O)))
        else:  # one convolution per sample with its own kernel: the batch as groups
            kernels = (pi @ self.weight.flatten(1)).reshape(B * O, *self.weight.shape[2:])  # (B·O, C, k, k)
            y = F.conv2d(x.reshape(1, B * C, H, W), kernels, stride=self.stride, padding=self.padding, groups=B)
            out = y.view(B, O, *y.shape[-2:])
        return self.bn(out)

    def extra_repr(self) -> str:
        return f"num_kernels={self.weight.shape[0]}, temperature={self.temperature}, stride={self.stride}"
