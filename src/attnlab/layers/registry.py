"""The attention registry: every visual attention module, by name, with its paper.

    @register_attention("se", category="channel", paper="Squeeze-and-Excitation Networks", venue="CVPR",
                        year=2018, url="https://arxiv.org/abs/1709.01507")
    class SqueezeExcite(nn.Module): ...

Categories are those of "Attention Mechanisms in Computer Vision: A Survey" (Guo et al., 2022).
Placements say where a module goes in a ResNet by default, as its paper puts it:
"block" (inside every residual block, after the last BN of the residual branch, before the addition),
"stage" (after stages 1-3, between stages, as BAM), "nonlocal" (after some blocks of stages 2 and 3, as
the non-local paper; also the home of CCNet's and DANet's all-position attention, which their papers put
after a segmentation backbone rather than inside a classifier), "conv" (replaces the block's 3×3
convolution: the branch modules, and BoTNet's MHSA in the last stage).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from .._names import Registry

__all__ = [
    "CATEGORIES",
    "PLACEMENTS",
    "DEFAULT_STAGES",
    "AttentionInfo",
    "register_attention",
    "list_attentions",
    "attention_info",
    "get_attention",
    "create_attention",
]

CATEGORIES = ("channel", "spatial", "temporal", "branch", "channel_spatial", "spatial_temporal")
PLACEMENTS = ("block", "stage", "nonlocal", "conv")
# The ResNet stages (1-4 = layer1-layer4) each placement uses unless a module or the caller says otherwise.
DEFAULT_STAGES = {"block": (1, 2, 3, 4), "stage": (1, 2, 3), "nonlocal": (2, 3), "conv": (1, 2, 3, 4)}


@dataclass(frozen=True)
class AttentionInfo:
    """What the registry knows of one module."""

    name: str
    category: str
    paper: str
    venue: str
    year: int
    url: str
    placement: str
    stages: tuple[int, ...]
    cls: type[nn.Module] = field(repr=False)
    resnet_kwargs: dict = field(default_factory=dict, repr=False)

    @property
    def has_params(self) -> bool:
        """Whether the module learns anything (SimAM, for one, does not)."""
        return self.num_params(64) > 0

    def num_params(self, channels: int = 256) -> int:
        return sum(p.numel() for p in self.cls(channels).parameters())


_REGISTRY: Registry[AttentionInfo] = Registry(
    "attention", "attnlab list attentions", describe=lambda info: info.cls.__qualname__
)


def register_attention(
    name: str,
    *,
    category: str,
    paper: str,
    venue: str,
    year: int,
    url: str,
    placement: str = "block",
    stages: tuple[int, ...] | None = None,
    resnet_kwargs: dict | None = None,
):
    """Class decorator adding a module to the registry; a name is taken once.

    ``placement`` and ``stages`` say where the paper puts the module in a ResNet (see the module doc);
    ``resnet_kwargs`` are defaults a ResNet passes when it embeds the module (a user's kwargs win).
    """
    if category not in CATEGORIES:
        raise ValueError(f"category: expected one of {CATEGORIES}, got {category!r}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement: expected one of {PLACEMENTS}, got {placement!r}")

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        where = DEFAULT_STAGES[placement] if stages is None else tuple(stages)
        _REGISTRY.add(
            name,
            AttentionInfo(name, category, paper, venue, year, url, placement, where, cls, dict(resnet_kwargs or {})),
        )
        return cls

    return decorate


def list_attentions(category: str | None = None) -> list[str]:
    """Registered names, sorted; only those of ``category`` when given."""
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"category: expected one of {CATEGORIES} or None, got {category!r}")
    return sorted(n for n, info in _REGISTRY.items() if category in (None, info.category))


def attention_info(name: str) -> AttentionInfo:
    """The registry's entry for ``name``; an unknown name raises ``ValueError`` with suggestions."""
    return _REGISTRY.get(name)


def get_attention(name: str) -> type[nn.Module]:
    """The module class; ``cls(channels, **kwargs)`` builds it (timm's ``attn_layer`` accepts it too)."""
    return attention_info(name).cls


def create_attention(name: str, channels: int, **kwargs) -> nn.Module:
    """Build the module ``name`` for ``channels`` channels: (B, C, H, W) -> (B, C, H, W)."""
    return get_attention(name)(channels, **kwargs)
