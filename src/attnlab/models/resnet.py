"""ResNet (He et al., CVPR 2016) with any registered attention module at its paper's place.

With ``attention=None`` the network is torchvision's ResNet (v1.5: stride on the 3×3 conv of the
bottleneck), key for key, so torchvision's weights load strictly and give the same logits. Attention adds
one submodule named ``attn`` per place and nothing else:

    placement   where                                                     keys
    "block"     in every block of ``stages``, after the last BN of the     layerN.M.attn.*
                residual branch, before the addition (SE, CBAM, ECA, …)
    "stage"     after each stage in ``stages`` (BAM: 1-3)                  attn.layerN.*
    "nonlocal"  after every other block (the 2nd, 4th, …) of ``stages``    layerN.M.attn.*
                (non-local: 2-3), on the block's output
    "conv"      in place of the 3×3 conv that maps the block's width to    layerN.M.attn.*  (conv2, bn2 gone)
                itself, with its stride (SK, split attention, BoTNet MHSA)
    "after_conv1"  in every block of ``stages``, after the first conv       layerN.M.attn.*
                + BN + ReLU of the residual branch (TANet's TAM)

Stages are numbered 1-4 for layer1-layer4. ``placement=None`` and ``stages=None`` take the module's
paper's place (``models/placement.py``). ``attention_init="identity"`` starts every module as the identity
(``models/identity_start.py``): a pretrained network keeps its logits when attention is added; with placement
"conv" the 3×3 conv stays (its keys load) and the module is blended in from it. The blocks' 3×3 convolutions
are ``Conv3x3`` (an ``nn.Conv2d`` with the same keys) which computes maps of at most 2×2 as one exact matrix
product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..layers.registry import attention_info
from .conv import Conv3x3
from .identity_start import ATTENTION_INITS, IdentityStart
from .placement import DEFAULT_STAGES, PLACEMENTS, paper_place
from .registry import register_model

__all__ = [
    "ResNet",
    "BasicBlock",
    "Bottleneck",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "STEMS",
    "is_attention_key",
]

STEMS = ("imagenet", "cifar")


@dataclass(frozen=True)
class AttentionPlan:
    """A resolved attention choice: which class, with which arguments, where."""

    cls: type[nn.Module]
    kwargs: dict = field(default_factory=dict)
    placement: str = "block"
    stages: tuple[int, ...] = (1, 2, 3, 4)
    init: str = "paper"  # or "identity": each module wrapped in IdentityStart

    @property
    def keeps_conv(self) -> bool:
        """Whether a "conv" placement keeps the 3×3 conv it replaces (to blend the module in from it)."""
        return self.init == "identity"

    def build(self, channels: int, stride: int = 1) -> nn.Module:
        extra = {"stride": stride} if stride != 1 else {}
        module = self.cls(channels, **extra, **self.kwargs)
        return IdentityStart(module) if self.init == "identity" else module


def plan_attention(
    attention: str | type[nn.Module] | None,
    attention_kwargs: dict | None = None,
    placement: str | None = None,
    stages: Sequence[int] | None = None,
    attention_init: str = "paper",
) -> AttentionPlan | None:
    """Resolve the builders' attention arguments; None when there is no attention."""
    if attention_init not in ATTENTION_INITS:
        raise ValueError(f"attention_init: expected one of {ATTENTION_INITS}, got {attention_init!r}")
    if attention is None:
        if attention_kwargs or placement or stages:
            raise ValueError("attention_kwargs, placement, stages: given without an attention")
        return None
    defaults: dict = {}
    if isinstance(attention, str):
        place = paper_place(attention)
        cls, own_placement, own_stages, defaults = (
            attention_info(attention).cls,
            place.placement,
            place.resolved_stages,
            place.kwargs,
        )
    elif isinstance(attention, type) and issubclass(attention, nn.Module):
        cls, own_placement, own_stages = attention, "block", DEFAULT_STAGES["block"]
    else:
        raise TypeError(f"attention: expected a registered name, an nn.Module class or None, got {attention!r}")
    if placement is not None and placement not in PLACEMENTS:
        raise ValueError(f"placement: expected one of {PLACEMENTS} or None, got {placement!r}")
    where = placement or own_placement
    if stages is None:
        stages = own_stages if where == own_placement else DEFAULT_STAGES[where]
    stages = tuple(stages)
    if not stages or any(s not in (1, 2, 3, 4) for s in stages):
        raise ValueError(f"stages: expected a non-empty choice among 1, 2, 3, 4, got {stages}")
    if attention_kwargs is not None and not isinstance(attention_kwargs, dict):
        raise TypeError(f"attention_kwargs: expected a dict or None, got {type(attention_kwargs).__name__}")
    return AttentionPlan(cls, {**defaults, **(attention_kwargs or {})}, where, stages, attention_init)


def is_attention_key(name: str) -> bool:
    """Whether a parameter or module name of a ResNet belongs to an attention module: ``attn`` among its parts."""
    return "attn" in name.split(".")


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class _Block(nn.Module):
    """What both blocks share: where the attention goes, and the residual."""

    expansion = 1
    # names of torchvision's layers an "attn" in place of the 3×3 conv removes (for weight loading)
    replaced: tuple[str, ...] = ()

    def _set_attention(
        self, plan: AttentionPlan | None, where: str | None, out_channels: int, width: int, stride: int
    ) -> None:
        """Build ``self.attn`` for ``where`` in (None, "block", "nonlocal", "conv", "after_conv1")."""
        self.attn_at = where
        if where is None:
            return
        if where == "conv":
            self.attn = plan.build(width, stride)
            if not plan.keeps_conv:
                self.replaced = ("conv2", "bn2")
        elif where == "after_conv1":
            self.attn = plan.build(width)
        else:
            self.attn = plan.build(out_channels)

    def _residual(self, out: Tensor, x: Tensor) -> Tensor:
        if self.attn_at == "block":
            out = self.attn(out)
        identity = x if self.downsample is None else self.downsample(x)
        out += identity  # in place, as torchvision: no extra activation-sized tensor per block
        out = self.relu(out)
        return self.attn(out) if self.attn_at == "nonlocal" else out

    def _conv2(self, out: Tensor) -> Tensor:
        if self.attn_at == "after_conv1":
            out = self.attn(out)
        if self.attn_at != "conv":
            return self.bn2(self.conv2(out))
        if self.replaced:
            return self.attn(out)
        return self.attn(out, self.bn2(self.conv2(out)))  # IdentityStart: blended in from the pretrained conv


class BasicBlock(_Block):
    """torchvision's BasicBlock: 3×3, 3×3 (+ attention), residual. "conv" replaces the second 3×3 conv."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        plan: AttentionPlan | None = None,
        where: str | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = Conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        if where != "conv" or plan.keeps_conv:
            self.conv2 = Conv3x3(planes, planes)
            self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride
        self._set_attention(plan, where, planes, planes, 1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self._residual(self._conv2(out), x)


class Bottleneck(_Block):
    """torchvision's Bottleneck (v1.5): 1×1, 3×3 with the stride, 1×1 (+ attention), residual."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        plan: AttentionPlan | None = None,
        where: str | None = None,
    ) -> None:
        super().__init__()
        width = planes
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        if where != "conv" or plan.keeps_conv:
            self.conv2 = Conv3x3(width, width, stride)
            self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self._set_attention(plan, where, planes * self.expansion, width, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self._conv2(out))
        return self._residual(self.bn3(self.conv3(out)), x)


class ResNet(nn.Module):
    """ResNet with torchvision's structure and keys, and attention where ``plan`` says.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
        num_classes: outputs of ``fc``.
        attention, attention_kwargs, placement, stages: see the module docstring.
        attention_init: "paper" (each module's own initialization) or "identity" (each starts as the identity).
        stem: "imagenet" (7×7 stride-2 conv + 3×3 max-pool) or "cifar" (3×3 stride-1 conv, no pool).
        in_chans: input channels.
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        *,
        num_classes: int = 1000,
        attention: str | type[nn.Module] | None = None,
        attention_kwargs: dict | None = None,
        placement: str | None = None,
        stages: Sequence[int] | None = None,
        attention_init: str = "paper",
        stem: str = "imagenet",
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"stem: expected one of {STEMS}, got {stem!r}")
        for name, value in (("num_classes", num_classes), ("in_chans", in_chans)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        self.plan = plan_attention(attention, attention_kwargs, placement, stages, attention_init)
        self.stem = stem
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.inplanes = 64
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_chans, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        self.layer1 = self._make_layer(block, 64, layers[0], 1, stage=1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2, stage=2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2, stage=3)
        self.layer4 = self._make_layer(block, 512, layers[3], 2, stage=4)
        if self.plan is not None and self.plan.placement == "stage":
            widths = {s: 64 * 2 ** (s - 1) * block.expansion for s in self.plan.stages}
            self.attn = nn.ModuleDict({f"layer{s}": self.plan.build(c) for s, c in widths.items()})
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        self._init_backbone()

    def _where(self, stage: int, index: int) -> str | None:
        """Attention inside block ``index`` of ``stage``: "block", "nonlocal", "conv" or None."""
        plan = self.plan
        if plan is None or plan.placement == "stage" or stage not in plan.stages:
            return None
        if plan.placement == "nonlocal":
            return "nonlocal" if index % 2 == 1 else None  # every other block, as the non-local paper
        return plan.placement

    def _make_layer(self, block, planes: int, blocks: int, stride: int, stage: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        layers = []
        for i in range(blocks):
            layers.append(
                block(
                    self.inplanes,
                    planes,
                    stride if i == 0 else 1,
                    downsample if i == 0 else None,
                    plan=self.plan,
                    where=self._where(stage, i),
                )
            )
            self.inplanes = planes * block.expansion
        return nn.Sequential(*layers)

    def _init_backbone(self) -> None:
        """torchvision's initialization, for the backbone only: attention modules keep their papers' init."""
        for name, m in self.named_modules():
            if is_attention_key(name):
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def describe(self) -> tuple[str, str]:
        """(block, blocks per stage) for ``attnlab list models``."""
        return type(self.layer1[0]).__name__, "-".join(str(len(getattr(self, f"layer{s}"))) for s in range(1, 5))

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, in_chans, H, W) -> the last stage's map (B, 512·expansion, H/32, W/32) (H/8 with the CIFAR stem)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for s, layer in enumerate((self.layer1, self.layer2, self.layer3, self.layer4), start=1):
            x = layer(x)
            if "attn" in self._modules and f"layer{s}" in self.attn:
                x = self.attn[f"layer{s}"](x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_chans, H, W) -> logits (B, num_classes)."""
        return self.fc(torch.flatten(self.avgpool(self.forward_features(x)), 1))


@register_model("resnet18")
def resnet18(**kwargs) -> ResNet:
    """ResNet-18 (11,689,512 parameters at 1000 classes); keyword arguments as ``ResNet``."""
    return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


@register_model("resnet34")
def resnet34(**kwargs) -> ResNet:
    """ResNet-34 (21,797,672 parameters at 1000 classes); keyword arguments as ``ResNet``."""
    return ResNet(BasicBlock, (3, 4, 6, 3), **kwargs)


@register_model("resnet50")
def resnet50(**kwargs) -> ResNet:
    """ResNet-50 (25,557,032 parameters at 1000 classes); keyword arguments as ``ResNet``."""
    return ResNet(Bottleneck, (3, 4, 6, 3), **kwargs)


@register_model("resnet101")
def resnet101(**kwargs) -> ResNet:
    """ResNet-101 (44,549,160 parameters at 1000 classes); keyword arguments as ``ResNet``."""
    return ResNet(Bottleneck, (3, 4, 23, 3), **kwargs)
