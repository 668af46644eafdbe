"""The model registry: builders by name, as torchvision's ``models/_api.py``.

@register_model("resnet18")
def resnet18(*, num_classes=1000, attention=None, ...) -> ResNet: ...
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .._names import Registry

__all__ = ["MODELS", "register_model", "list_models", "create_model", "get_model_builder"]

MODELS: Registry[Callable[..., nn.Module]] = Registry("model", "attnlab list models")


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    return MODELS.register(name)


def list_models() -> list[str]:
    return MODELS.names()


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    return MODELS.get(name)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model: ``create_model("resnet18", num_classes=10, attention="cbam", stem="cifar")``."""
    return get_model_builder(name)(**kwargs)
