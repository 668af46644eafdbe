"""The ResNet blocks' 3×3 convolution, computed as one matrix product on maps of at most 2×2."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Conv3x3"]


class Conv3x3(nn.Conv2d):
    """``nn.Conv2d(in, out, 3, stride, padding=1, bias=False)``: the same parameters, state-dict keys and results.

    On maps of at most 2×2 (ResNet's last stages on small images: 28×28 digits through the ImageNet stem reach
    layer3 at 2×2 and layer4 at 1×1) most taps multiply padding: 8 of 9 on a 1×1 map, 5 of 9 on 2×2. There
    the convolution is the linear map (C, h, w) -> (O, h', w') whose matrix holds, for each output and input
    position, the one tap that joins them (tap = input - stride · output + 1); one matrix product does it.
    Same outputs and gradients (the other taps' gradient is zero either way) for 2.25-9× fewer multiply-adds,
    and it avoids oneDNN's slow backward on 1×1 maps (docs/training.md has the measurement).
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int = 1) -> None:
        super().__init__(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h > 2 or w > 2:
            return super().forward(x)
        B, C = x.shape[:2]
        O, (sh, sw) = self.out_channels, self.stride
        ho, wo = (h - 1) // sh + 1, (w - 1) // sw + 1
        # For output (i, j) the taps that meet the input form the window starting at (1 - stride·i, 1 - stride·j).
        windows = [
            self.weight[:, :, 1 - sh * i : 1 - sh * i + h, 1 - sw * j : 1 - sw * j + w]  # (O, C, h, w)
            for i in range(ho)
            for j in range(wo)
        ]
        matrix = torch.stack(windows).permute(0, 1, 3, 4, 2).reshape(ho * wo * O, h * w * C)
        # (h, w, C) order on both sides: a free view of channels_last input, channels_last output
        out = x.permute(0, 2, 3, 1).reshape(B, h * w * C) @ matrix.t()  # (B, ho·wo·O)
        return out.view(B, ho, wo, O).permute(0, 3, 1, 2)
