"""Segmentation data: ``nuclei`` (a real fluorescence image of cell nuclei with its hand-made instance mask)
and ``segfolder`` (the user's own images and masks).

Training items are random crops ``(image (C, h, w) float, mask (h, w) int64)`` with flips, 90° rotations and
microscope intensity augmentation; the mask is {0, 1} (foreground) or, with several classes, class indices
0…N (0 background). Test items are whole images, one per test condition (clean, under an illumination
gradient, at low contrast: ``microscopy.TEST_CONDITIONS``), as ``(images (K, C, H, W) float, labels (H, W)
int64)``, the labels instance labels (one class) or class indices (several): the task evaluates each condition
separately.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._names import Registry
from .microscopy import TEST_CONDITIONS, augment_geometry, augment_intensity, normalize_percentiles
from .packaged import package_file

__all__ = [
    "SEGMENTATION_DATA",
    "SegmentationData",
    "RandomCrops",
    "WholeImages",
    "read_array",
    "read_mask",
    "read_class_mask",
    "build_segmentation_data",
    "NUCLEI_SPLIT_COLUMN",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass
class SegmentationData:
    name: str
    train: Dataset
    test: Dataset
    in_chans: int
    conditions: list[str]
    notes: list[str] = field(default_factory=list)


SEGMENTATION_DATA: Registry[Callable[..., SegmentationData]] = Registry(
    "segmentation data", "attnlab train --task segment --help"
)


def read_array(path: Path) -> np.ndarray:
    """An image file as an array (H, W) or (H, W, C), in its own dtype; errors name the file."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            a = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                a = np.asarray(im)
    except Exception as e:  # noqa: BLE001  (any reader failure is a file the user must fix)
        raise ValueError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    a = np.squeeze(a) if a.ndim > 2 and 1 in a.shape[:-1] else a
    if a.ndim == 3 and a.shape[-1] not in (3, 4):
        raise ValueError(f"{path}: a stack of shape {a.shape}; expected one 2-D image (H, W) or (H, W, 3)")
    if a.ndim not in (2, 3):
        raise ValueError(f"{path}: an array of shape {a.shape}; expected one 2-D image (H, W) or (H, W, 3)")
    return a[..., :3] if a.ndim == 3 else a


def read_mask(path: Path) -> np.ndarray:
    """Instance labels (H, W) int64 from a mask file: 8-bit masks are binary (0/1 or 0/255; each connected
    foreground region one instance), 16- or 32-bit masks are instance labels (0 = background)."""
    from skimage.measure import label

    m = read_array(path)
    if m.ndim != 2:
        raise ValueError(f"{path}: a mask of shape {m.shape}; expected one 2-D label image (H, W)")
    values = np.unique(m)
    if m.dtype in (np.uint8, np.bool_):
        if not set(values.tolist()) <= {0, 1} and not set(values.tolist()) <= {0, 255}:
            shown = values[:8].tolist()
            raise ValueError(
                f"{path}: an 8-bit mask with values {shown}; expected a binary mask (0/255 or 0/1), "
                "or instance labels saved as a 16-bit image"
            )
        return label(m > 0, connectivity=1).astype(np.int64)
    if not np.issubdtype(m.dtype, np.integer) or values.min() < 0:
        raise ValueError(f"{path}: a {m.dtype} mask; expected non-negative integer instance labels")
    return m.astype(np.int64)


def read_class_mask(path: Path, classes: int) -> np.ndarray:
    """Class indices (H, W) int64 from a mask file of any integer depth: 0 background, 1…``classes``."""
    m = read_array(path)
    if m.ndim != 2:
        raise ValueError(f"{path}: a mask of shape {m.shape}; expected one 2-D image of class indices (H, W)")
    if not (np.issubdtype(m.dtype, np.integer) or m.dtype == np.bool_):
        raise ValueError(f"{path}: a {m.dtype} mask; expected integer class indices 0-{classes}")
    values = np.unique(m)
    if values.min() < 0 or values.max() > classes:
        raise ValueError(
            f"{path}: a mask with values {values[:8].tolist()}; expected class indices 0-{classes} "
            f"(--classes {classes}: 0 background, 1-{classes} the classes)"
        )
    return m.astype(np.int64)


def _chw(image: np.ndarray) -> np.ndarray:
    return image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)


class RandomCrops(Dataset):
    """``length`` random crops of side ``crop`` from (normalized image (C, H, W), labels (H, W)) pairs, with
    flips, 90° rotations and intensity augmentation (drawn from torch's generator: see ``EpochSeeded``). The
    crops' masks are the foreground (``classes`` = 1: labels > 0) or the class indices themselves."""

    def __init__(
        self,
        pairs: list[tuple[np.ndarray, np.ndarray]],
        crop: int,
        length: int,
        augment: bool = True,
        classes: int = 1,
    ):
        self.images = [torch.from_numpy(np.ascontiguousarray(img)) for img, _ in pairs]
        self.masks = [torch.from_numpy((m > 0 if classes == 1 else m).astype(np.int64)) for _, m in pairs]
        self.crop, self.length, self.augment = crop, length, augment
        self.weights = torch.tensor([float(m.numel()) for m in self.masks])  # larger images, more crops

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        k = int(torch.multinomial(self.weights, 1).item())
        image, mask = self.images[k], self.masks[k]
        h, w = mask.shape
        top = int(torch.randint(h - self.crop + 1, ()).item())
        left = int(torch.randint(w - self.crop + 1, ()).item())
        x = image[:, top : top + self.crop, left : left + self.crop]
        y = mask[top : top + self.crop, left : left + self.crop]
        if self.augment:
            x, y = augment_geometry(x, y)
            x = augment_intensity(x)
        return x.float(), y


class WholeImages(Dataset):
    """Whole test images under every condition, normalized each: ((K, C, H, W), instance labels (H, W))."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]], conditions: list[str]):
        self.items = []
        for raw, labels in pairs:  # raw: (C, H, W) as read
            stack = np.stack([normalize_percentiles(TEST_CONDITIONS[c](raw)) for c in conditions])
            self.items.append((torch.from_numpy(stack.astype(np.float32)), torch.from_numpy(labels)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.items[i]


def build_segmentation_data(
    name: str, *, root: str | Path | None = None, crop: int = 96, samples: int = 256, classes: int = 1
) -> SegmentationData:
    """The data set ``name``; ``classes`` > 1 reads masks as class indices 0…classes (segfolder only)."""
    builder = SEGMENTATION_DATA.get(name)
    return builder(root=None if root is None else Path(root), crop=crop, samples=samples, classes=classes)


def _check_crop(pairs: list[tuple[np.ndarray, np.ndarray, Path]], crop: int) -> None:
    for image, _, path in pairs:
        h, w = image.shape[-2:]
        if min(h, w) < crop:
            raise ValueError(
                f"{path}: the image is {h}×{w}, smaller than one training crop ({crop}×{crop}); pass --crop {min(h, w)}"
                " or smaller"
            )


# The nuclei image is split at this column: columns [0, 256) train, [256, 512) are held out for testing
# (52 nuclei lie wholly inside the test half, 57 reach into it; 68 lie wholly inside the training half).
NUCLEI_SPLIT_COLUMN = 256


@SEGMENTATION_DATA.register("nuclei")
def nuclei(*, root: Path | None = None, crop: int = 96, samples: int = 256, classes: int = 1) -> SegmentationData:
    """The 2018 Data Science Bowl fluorescence image of nuclei with its instance mask (512×512, 16-bit),
    shipped in the stardist wheel (BSD-3); read through the wheel's file list, never by importing stardist.
    ``root`` is accepted and unused."""
    if classes != 1:
        raise ValueError(f"--classes: nuclei has one class (nuclei against background), got {classes}")
    image = read_array(package_file("stardist", "stardist/data/images/img2d.tif", extra="segment"))
    labels = read_mask(package_file("stardist", "stardist/data/images/mask2d.tif", extra="segment"))
    s = NUCLEI_SPLIT_COLUMN
    train_image = normalize_percentiles(image[:, :s])
    test_raw, test_labels = _chw(image[:, s:]), labels[:, s:]
    if crop > min(train_image.shape[-2:]):
        raise ValueError(f"--crop: expected at most {min(train_image.shape[-2:])} for nuclei, got {crop}")
    conditions = list(TEST_CONDITIONS)
    notes = [
        f"nuclei: training on columns 0-{s - 1} of the 512×512 image ({samples} random {crop}×{crop} crops an "
        f"epoch), testing on columns {s}-511, whole, under {', '.join(conditions)}"
    ]
    return SegmentationData(
        "nuclei",
        RandomCrops([(train_image, labels[:, :s])], crop, samples),
        WholeImages([(test_raw, test_labels)], conditions),
        in_chans=1,
        conditions=conditions,
        notes=notes,
    )


def _pairs(folder: Path, classes: int) -> list[tuple[np.ndarray, np.ndarray, Path]]:
    """(image (C, H, W) as read, labels, image path) for ``folder/images`` and ``folder/masks``: instance labels
    (one class) or class indices (several)."""
    images_dir, masks_dir = folder / "images", folder / "masks"
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise FileNotFoundError(
                f"--data-dir: expected a folder {d} (segfolder: train/ and val/, each with images/ and masks/)"
            )
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"--data-dir: {images_dir} holds no image ({', '.join(IMAGE_SUFFIXES)})")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    pairs = []
    for path in images:
        if path.stem not in masks:
            raise ValueError(f"{path}: no mask with the same name in {masks_dir}")
        mask = masks[path.stem]
        image, labels = _chw(read_array(path)), read_mask(mask) if classes == 1 else read_class_mask(mask, classes)
        if image.shape[-2:] != labels.shape:
            raise ValueError(
                f"{masks[path.stem]}: the mask is {labels.shape[0]}×{labels.shape[1]}, its image {path.name} is "
                f"{image.shape[-2]}×{image.shape[-1]}; expected the same size"
            )
        pairs.append((image, labels, path))
    channels = {p[0].shape[0] for p in pairs}
    if len(channels) > 1:
        raise ValueError(f"--data-dir: {images_dir} mixes grayscale and color images; expected one kind")
    return pairs


@SEGMENTATION_DATA.register("segfolder")
def segfolder(*, root: Path | None = None, crop: int = 96, samples: int = 256, classes: int = 1) -> SegmentationData:
    """``root/train/{images,masks}`` and ``root/val/{images,masks}``, masks matched to images by file name."""
    if root is None:
        raise ValueError("--data-dir: segfolder needs a folder with train/ and val/, each holding images/ and masks/")
    train, val = _pairs(root / "train", classes), _pairs(root / "val", classes)
    _check_crop(train, crop)
    if train[0][0].shape[0] != val[0][0].shape[0]:
        raise ValueError(f"--data-dir: train images have {train[0][0].shape[0]} channels, val {val[0][0].shape[0]}")
    conditions = ["clean"]
    notes = [
        f"segfolder: {len(train)} training images ({samples} random {crop}×{crop} crops an epoch), "
        f"{len(val)} test images"
        + (f"; {classes} classes (masks of class indices 0-{classes}, 0 the background)" if classes > 1 else "")
    ]
    return SegmentationData(
        "segfolder",
        RandomCrops([(normalize_percentiles(img), m) for img, m, _ in train], crop, samples, classes=classes),
        WholeImages([(img, m) for img, m, _ in val], conditions),
        in_chans=train[0][0].shape[0],
        conditions=conditions,
        notes=notes,
    )
