"""CIFAR-10/100 and ImageFolder through torchvision, from local folders; downloads only when asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets
from torchvision.transforms import v2

from .registry import DataBundle, register_dataset

CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _cifar_transforms(name: str, train: bool, hflip: bool = True) -> v2.Compose:
    mean, std = CIFAR_STATS[name]
    steps = ([v2.RandomCrop(32, padding=4)] + ([v2.RandomHorizontalFlip()] if hflip else [])) if train else []
    return v2.Compose([v2.ToImage(), *steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def _cifar(name: str, cls, root: Path | None, download: bool, hflip: bool) -> DataBundle:
    if root is None:
        raise ValueError(f"--data-dir: {name} needs a folder (it holds or receives the CIFAR python files)")
    try:
        train = cls(root, train=True, transform=_cifar_transforms(name, True, hflip), download=download)
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
def cifar10(*, root: Path | None = None, download: bool = False, hflip: bool = True) -> DataBundle:
    return _cifar("cifar10", datasets.CIFAR10, root, download, hflip)


@register_dataset("cifar100")
def cifar100(*, root: Path | None = None, download: bool = False, hflip: bool = True) -> DataBundle:
    return _cifar("cifar100", datasets.CIFAR100, root, download, hflip)


SMALL = 64  # images up to this side train at their own size with shifts; larger ones with resized crops


def measured_size(folder: datasets.ImageFolder, sample: int = 256) -> int:
    """The median shorter side of up to ``sample`` training images (headers only: nothing is decoded)."""
    step = max(1, len(folder.samples) // sample)
    sides = []
    for path, _ in folder.samples[::step]:
        with Image.open(path) as im:
            sides.append(min(im.size))
    return int(np.median(sides))


def folder_transforms(size: int, hflip: bool, train: bool) -> tuple[v2.Compose, int]:
    """(transform, eval resize). Small images: shifts by padding and cropping (as CIFAR); larger ones:
    random-resized crops of at least a quarter of the image (torchvision's 8 % suits ImageNet, not
    small user data sets). Evaluation: shorter side to ``resize``, center crop ``size``."""
    small = size <= SMALL
    resize = size if small else int(size * 256 / 224)
    common = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if not train:
        steps = [v2.Resize(resize, antialias=True), v2.CenterCrop(size)]
    elif small:
        steps = [v2.Resize(size, antialias=True), v2.CenterCrop(size), v2.RandomCrop(size, padding=max(2, size // 8))]
    else:
        steps = [v2.RandomResizedCrop(size, scale=(0.25, 1.0), antialias=True)]
    if train and hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose([v2.ToImage(), *steps, *common]), resize


@register_dataset("imagefolder")
def imagefolder(
    *, root: Path | None = None, download: bool = False, image_size: int | None = None, hflip: bool = True
) -> DataBundle:
    """``root/train/<class>/*`` and ``root/val/<class>/*``; the image size taken from the images unless given.

    Flips are on by default (photographs); pass ``hflip=False`` (``--no-hflip``) for digits and text.
    """
    if root is None or not (root / "train").is_dir() or not (root / "val").is_dir():
        raise FileNotFoundError(f"--data-dir: expected {root}/train/<class>/… and {root}/val/<class>/… image folders")
    train = datasets.ImageFolder(root / "train")
    test = datasets.ImageFolder(root / "val")
    if train.classes != test.classes:
        raise ValueError(f"--data-dir: train and val class folders differ: {train.classes} vs {test.classes}")
    if image_size is not None and image_size < 8:
        raise ValueError(f"--image-size: expected an int >= 8, got {image_size}")
    size = image_size or measured_size(train)
    why = "--image-size" if image_size else f"the median shorter side of {root / 'train'}'s images"
    train.transform, _ = folder_transforms(size, hflip, train=True)
    test.transform, resize = folder_transforms(size, hflip, train=False)
    style = "shifts" if size <= SMALL else "random-resized crops"
    notes = [
        f"imagefolder: {size}×{size} px ({why}); training with {style}"
        + (", horizontal flips" if hflip else ", no flips")
        + (" (--image-size overrides)" if not image_size else "")
    ]
    return DataBundle(
        "imagefolder",
        train,
        test,
        num_classes=len(train.classes),
        in_chans=3,
        image_size=size,
        classes=list(train.classes),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        resize=resize,
        notes=notes,
    )
