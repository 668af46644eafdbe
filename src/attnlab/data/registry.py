"""The dataset registry: each builder returns the train and test splits with what a model needs to know.

@register_dataset("mnist5k")
def mnist5k(*, root=None, download=False) -> DataBundle: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import Dataset

from .._names import Registry

__all__ = ["DATASETS", "DataBundle", "register_dataset", "list_datasets", "build_dataset"]


@dataclass
class DataBundle:
    """Train and test splits (each item: (image tensor (C, H, W), int label)) and their shape.

    Evaluation resizes an image's shorter side to ``resize`` (None: ``image_size``), center-crops
    ``image_size`` and normalizes by ``mean`` / ``std``: predict applies the same to a user's files.
    ``notes`` are what the builder chose and why (printed at the start of a run).
    """

    name: str
    train: Dataset
    test: Dataset
    num_classes: int
    in_chans: int
    image_size: int
    classes: list[str] = field(default_factory=list)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    resize: int | None = None
    notes: list[str] = field(default_factory=list)


DATASETS: Registry[Callable[..., DataBundle]] = Registry("data", "attnlab train --help")


def register_dataset(name: str):
    return DATASETS.register(name)


def list_datasets() -> list[str]:
    return DATASETS.names()


def build_dataset(name: str, *, root: str | Path | None = None, download: bool = False, **options) -> DataBundle:
    """Build a registered data set; ``options`` left at None are the data set's own choice.

    Options a builder does not take (``image_size`` for a fixed-size set) are refused by name.
    """
    builder = DATASETS.get(name)
    given = {k: v for k, v in options.items() if v is not None}
    accepted = set(inspect.signature(builder).parameters)
    for key in given:
        if key not in accepted:
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"{flag}: data set {name!r} does not take it (its images have a fixed form)")
    return builder(root=None if root is None else Path(root), download=download, **given)
