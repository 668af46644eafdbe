"""The dataset registry: each builder returns the train and test splits with what a model needs to know.

@register_dataset("mnist5k")
def mnist5k(*, root=None, download=False) -> DataBundle: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import Dataset

from .._names import Registry

__all__ = ["DATASETS", "DataBundle", "register_dataset", "list_datasets", "build_dataset"]


@dataclass
class DataBundle:
    """Train and test splits (each item: (image tensor (C, H, W), int label)) and their shape."""

    name: str
    train: Dataset
    test: Dataset
    num_classes: int
    in_chans: int
    image_size: int
    classes: list[str] = field(default_factory=list)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    stem: str = ""  # the ResNet stem that suits the data; "" = CIFAR's for images up to 64 px, else ImageNet's

    def __post_init__(self) -> None:
        if not self.stem:
            self.stem = "cifar" if self.image_size <= 64 else "imagenet"


DATASETS: Registry[Callable[..., DataBundle]] = Registry("data", "attnlab train --help")


def register_dataset(name: str):
    return DATASETS.register(name)


def list_datasets() -> list[str]:
    return DATASETS.names()


def build_dataset(name: str, *, root: str | Path | None = None, download: bool = False) -> DataBundle:
    builder = DATASETS.get(name)
    return builder(root=None if root is None else Path(root), download=download)
