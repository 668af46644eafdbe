"""The attention registry: every visual attention module, by name, with its paper.

    @register_attention("se", category="channel", paper="Squeeze-and-Excitation Networks", venue="CVPR",
                        year=2018, url="https://arxiv.org/abs/1709.01507")
    class SqueezeExcite(nn.Module): ...

Categories are those of "Attention Mechanisms in Computer Vision: A Survey" (Guo et al., 2022).
The registry says what a module is; where it goes in a network is the network's knowledge (a ResNet's
places are in ``models/placement.py``, a U-Net places modules its own way).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from torch import nn

from .._names import Registry
from ..measure.cost import count_params

__all__ = [
    "CATEGORIES",
    "AttentionInfo",
    "register_attention",
    "list_attentions",
    "attention_info",
    "get_attention",
    "create_attention",
]

CATEGORIES = ("channel", "spatial", "temporal", "branch", "channel_spatial", "spatial_temporal")


@dataclass(frozen=True)
class AttentionInfo:
    """What the registry knows of one module."""

    name: str
    category: str
    paper: str
    venue: str
    year: int
    url: str
    cls: type[nn.Module] = field(repr=False)

    @property
    def has_params(self) -> bool:
        """Whether the module learns anything (SimAM, for one, does not)."""
        return _num_params(self.cls, 64) > 0

    @property
    def per_frame(self) -> bool:
        """Whether the module is temporal: it takes per-frame maps (B·T, C, H, W) and ``num_frames`` = T."""
        return self.category in ("temporal", "spatial_temporal")

    def num_params(self, channels: int = 256) -> int:
        return _num_params(self.cls, channels)


@functools.cache
def _num_params(cls: type[nn.Module], channels: int) -> int:
    """Parameters of ``cls(channels)``, built once per (module, width): listings ask often."""
    return count_params(cls(channels))


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
):
    """Class decorator adding a module to the registry; a name is taken once."""
    if category not in CATEGORIES:
        raise ValueError(f"category: expected one of {CATEGORIES}, got {category!r}")

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        _REGISTRY.add(name, AttentionInfo(name, category, paper, venue, year, url, cls))
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
    """Build the module ``name`` for ``channels`` channels: (B, C, H, W) -> (B, C, H, W).

    Temporal modules (``attention_info(name).per_frame``) take the frames of B clips as (B·T, C, H, W), clip by
    clip, and ``num_frames=T`` among ``kwargs``: one convention for all of them (TAM's official code's)."""
    return get_attention(name)(channels, **kwargs)
