"""U-Nets for segmentation: plain, with attention gates, with residual blocks, and both.

    unet                 Ronneberger et al., MICCAI 2015: two 3×3 conv + BN + ReLU per level, 2×2 max-pool
                         down, 2×2 transposed conv up (or bilinear + 1×1 conv), skip concatenation
    attention_unet       Oktay et al., MIDL 2018: an additive attention gate on every skip, gated by the
                         coarser decoder level (``layers/attention_gate.py``)
    res_unet             residual blocks in place of the double conv (two 3×3 conv + BN, a 1×1 conv + BN
                         projection on the shortcut when the width changes; ResNet's BasicBlock)
    res_attention_unet   both: the seed system of attnlab's segmentation task

Any zoo module joins every encoder and decoder block with ``attention="scse"`` (as segmentation_models_pytorch
does with scSE): after the block's last BN, before the residual addition (ResNet's "block" place), or at the
end of a double conv; it is the block's submodule ``attn``. Depth (downsamplings) and base width are
arguments (the papers: 4 and 64); widths double per level. Any input size: H and W are padded (reflected)
to multiples of 2^depth and the output cropped back, so odd sizes come out at their size.

    (B, in_chans, H, W) -> logits (B, num_classes, H, W)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.attention_gate import AttentionGate
from ..layers.registry import get_attention
from .registry import register_model

__all__ = ["UNet", "DoubleConv", "ResidualBlock", "UPSAMPLES"]

UPSAMPLES = ("transpose", "bilinear")


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)]


class DoubleConv(nn.Module):
    """(3×3 conv, BN, ReLU) × 2, then the optional attention module ``attn``."""

    def __init__(self, cin: int, cout: int, attn: nn.Module | None = None) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout), nn.ReLU(inplace=True), *_conv_bn(cout, cout), nn.ReLU())
        self.attn = attn

    def forward(self, x: Tensor) -> Tensor:
        x = self.body(x)
        return x if self.attn is None else self.attn(x)


class ResidualBlock(nn.Module):
    """3×3 conv, BN, ReLU, 3×3 conv, BN (+ ``attn``), + shortcut (1×1 conv + BN when widths differ), ReLU."""

    def __init__(self, cin: int, cout: int, attn: nn.Module | None = None) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout), nn.ReLU(inplace=True), *_conv_bn(cout, cout))
        self.attn = attn
        self.shortcut = (
            None if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        if self.attn is not None:
            out = self.attn(out)
        return self.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class _Up(nn.Module):
    """Doubles the resolution and halves the width: 2×2 transposed conv, or bilinear + 1×1 conv."""

    def __init__(self, cin: int, cout: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.conv = nn.ConvTranspose2d(cin, cout, 2, stride=2) if mode == "transpose" else nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "bilinear":
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv(x)


class UNet(nn.Module):
    """A U-Net; see the module docstring.

    Args:
        in_chans: input channels.
        num_classes: output logit maps (1 for foreground / background).
        depth: downsamplings (levels below the first).
        width: channels of the first level; level i has width · 2^i.
        residual: residual blocks instead of double convs.
        gates: attention gates on the skips.
        attention: a registered zoo module (or a class) inside every block, or None.
        attention_kwargs: its arguments.
        upsample: "transpose" (the paper) or "bilinear".
    """

    def __init__(
        self,
        *,
        in_chans: int = 1,
        num_classes: int = 1,
        depth: int = 4,
        width: int = 64,
        residual: bool = False,
        gates: bool = False,
        attention: str | type[nn.Module] | None = None,
        attention_kwargs: dict | None = None,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        for name, value, low in (("in_chans", in_chans, 1), ("num_classes", num_classes, 1), ("depth", depth, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 2:
            raise ValueError(f"width: expected an int >= 2, got {width!r}")
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample: expected one of {UPSAMPLES}, got {upsample!r}")
        if attention_kwargs is not None and attention is None:
            raise ValueError("attention_kwargs: given without an attention")
        cls = get_attention(attention) if isinstance(attention, str) else attention
        block = ResidualBlock if residual else DoubleConv
        self.depth, self.in_chans, self.num_classes = depth, in_chans, num_classes

        def make(cin: int, cout: int) -> nn.Module:
            return block(cin, cout, None if cls is None else cls(cout, **(attention_kwargs or {})))

        widths = [width * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList(
            [make(in_chans, widths[0])] + [make(widths[i - 1], widths[i]) for i in range(1, depth + 1)]
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(_Up(widths[i + 1], widths[i], upsample) for i in range(depth))
        self.skip_gates = (
            nn.ModuleList(AttentionGate(widths[i], widths[i + 1]) for i in range(depth)) if gates else None
        )
        self.decoder = nn.ModuleList(make(2 * widths[i], widths[i]) for i in range(depth))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def _pad(self, x: Tensor) -> Tensor:
        """Pad H and W at the bottom and right to multiples of 2^depth (reflected where the image allows)."""
        m = 2**self.depth
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        if not (ph or pw):
            return x
        mode = "reflect" if ph < h and pw < w else "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def describe(self) -> tuple[str, str]:
        """(block, channels per level) for ``attnlab list models``."""
        block = type(self.encoder[0]).__name__ + (" + gates" if self.skip_gates is not None else "")
        return block, "-".join(str(b.body[0].out_channels) for b in self.encoder)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_chans, H, W) -> (B, num_classes, H, W)."""
        h, w = x.shape[-2:]
        x = self._pad(x)
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.pool(x))  # level i: (B, width·2^i, H/2^i, W/2^i)
            skips.append(x)
        x = skips.pop()  # the bottom level, the first gating signal
        for level in reversed(range(self.depth)):
            skip = skips[level]
            if self.skip_gates is not None:
                skip = self.skip_gates[level](skip, x)  # gated by the coarser level, before it is upsampled
            x = self.decoder[level](torch.cat([skip, self.up[level](x)], dim=1))
        return self.head(x)[..., :h, :w]


def _builder(name: str, residual: bool, gates: bool, doc: str):
    def build(**kwargs) -> UNet:
        return UNet(residual=residual, gates=gates, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{doc}; keyword arguments as ``UNet`` (depth 4, width 64 by default, as the papers)."
    return register_model(name)(build)


unet = _builder("unet", False, False, "U-Net (Ronneberger et al., 2015)")
attention_unet = _builder("attention_unet", False, True, "Attention U-Net (Oktay et al., 2018)")
res_unet = _builder("res_unet", True, False, "U-Net with residual blocks")
res_attention_unet = _builder("res_attention_unet", True, True, "U-Net with residual blocks and attention gates")
