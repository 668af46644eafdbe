"""CIFAR-10/100 and ImageFolder through torchvision, from local folders; downloads only when asked."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import datasets
from torchvision.transforms import v2

from .registry import DataBundle, register_dataset

CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _cifar_transforms(name: str, train: bool) -> v2.Compose:
    mean, std = CIFAR_STATS[name]
    steps = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()] if train else []
    return v2.Compose([v2.ToImage(), *steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def _cifar(name: str, cls, root: Path | None, download: bool) -> DataBundle:
    if root is None:
        raise ValueError(f"--data-dir: {name} needs a folder (it holds or receives the CIFAR python files)")
    try:
        train = cls(root, train=True, transform=_cifar_transforms(name, True), download=download)
        test = cls(root, train=False, transform=_cifar_transforms(name, False), download=download)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted. You can use download=True …"
        folder = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[name]
        raise FileNotFoundError(
            f"--data-dir: {name} not found in {root} (expected {root / folder}); pass --download to fetch it, "
            f"or unpack the CIFAR python archive there ({e})"
        ) from None
    mean, std = CIFAR_STATS[name]
    return DataBundle(
        name,
        train,
        test,
        num_classes=len(train.classes),
        in_chans=3,
        image_size=32,
        classes=list(train.classes),
        mean=mean,
        std=std,
    )


@register_dataset("cifar10")
def cifar10(*, root: Path | None = None, download: bool = False) -> DataBundle:
    return _cifar("cifar10", datasets.CIFAR10, root, download)


@register_dataset("cifar100")
def cifar100(*, root: Path | None = None, download: bool = False) -> DataBundle:
    return _cifar("cifar100", datasets.CIFAR100, root, download)


@register_dataset("imagefolder")
def imagefolder(*, root: Path | None = None, download: bool = False, image_size: int = 224) -> DataBundle:
    """``root/train/<class>/*.jpg`` and ``root/val/<class>/*.jpg``, ImageNet-style augmentation."""
    if root is None or not (root / "train").is_dir() or not (root / "val").is_dir():
        raise FileNotFoundError(f"--data-dir: expected {root}/train/<class>/… and {root}/val/<class>/… image folders")
    resize = int(image_size * 256 / 224)
    common = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    train_tf = v2.Compose(
        [v2.ToImage(), v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip(), *common]
    )
    test_tf = v2.Compose([v2.ToImage(), v2.Resize(resize, antialias=True), v2.CenterCrop(image_size), *common])
    train = datasets.ImageFolder(root / "train", transform=train_tf)
    test = datasets.ImageFolder(root / "val", transform=test_tf)
    if train.classes != test.classes:
        raise ValueError(f"--data-dir: train and val class folders differ: {train.classes} vs {test.classes}")
    return DataBundle(
        "imagefolder",
        train,
        test,
        num_classes=len(train.classes),
        in_chans=3,
        image_size=image_size,
        classes=list(train.classes),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
