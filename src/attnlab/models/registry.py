"""The model registry: builders by name, as torchvision's ``models/_api.py``.

@register_model("resnet18")
def resnet18(*, num_classes=1000, attention=None, ...) -> ResNet: ...
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .._names import unknown_name

__all__ = ["register_model", "list_models", "create_model", "get_model_builder"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is already registered")
        _BUILDERS[name] = fn
        return fn

    return decorate


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    try:
        return _BUILDERS[name]
    except (KeyError, TypeError):
        raise unknown_name("model", name, _BUILDERS, "attnlab list models") from None


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model: ``create_model("resnet18", num_classes=10, attention="cbam", stem="cifar")``."""
    return get_model_builder(name)(**kwargs)
