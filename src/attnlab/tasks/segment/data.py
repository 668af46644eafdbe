"""The segment task's data sets, one builder shape (``builder(options, *, download) -> TaskData``): ``nuclei``
(a real fluorescence image of cell nuclei with its hand-made instance mask) and ``segfolder`` (the user's own
images and masks).

Training items are random crops ``(image (C, h, w) float, class indices (h, w) int64)`` with flips, 90°
rotations and microscope intensity augmentation. Test items are whole images, one per test condition (clean,
under an illumination gradient, at low contrast: ``microscopy.TEST_CONDITIONS``), as ``(images (K, C, H, W)
float, labels (H, W) int64)``: the K conditions stay an axis of their own, which the task evaluates one by
one. The labels are the masks' as the label scheme reads them (instance labels for one class, class indices
for several: ``labels.py``). ``meta``: ``in_chans``, ``conditions`` (their names, in order), ``classes`` (the
names of the classes besides the background) and ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ...data.layout import a_folder, find_splits
from ...data.packaged import package_file
from ...data.splits import VAL_SEED, stratified_indices
from ..base import DataSets, TaskData
from .files import IMAGE_SUFFIXES, read_array, to_chw
from .labels import LabelScheme, label_scheme
from .microscopy import TEST_CONDITIONS, augment_geometry, augment_intensity, normalize_percentiles

__all__ = ["SEGMENT_DATA", "NUCLEI_SPLIT_COLUMN", "RandomCrops", "TrainingImages", "WholeImages", "carve_strips"]

SEGMENT_DATA = DataSets("segment")


class RandomCrops(Dataset):
    """``length`` random crops of side ``crop`` from (normalized image (C, H, W), class indices (H, W)) pairs,
    with flips, 90° rotations and intensity augmentation (drawn from torch's generator: see ``EpochSeeded``)."""

    def __init__(self, pairs: list[tuple[np.ndarray, Tensor]], crop: int, length: int, augment: bool = True):
        self.images = [torch.from_numpy(np.ascontiguousarray(img)) for img, _ in pairs]
        self.masks = [m.contiguous() for _, m in pairs]
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
    """Whole test images under every condition, normalized each: (images (K, C, H, W), labels (H, W))."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]], conditions: list[str]):
        self.items = []
        for raw, labels in pairs:  # raw: (C, H, W) as read
            stack = np.stack([normalize_percentiles(TEST_CONDITIONS[c](raw)) for c in conditions])  # (K, C, H, W)
            self.items.append((torch.from_numpy(stack.astype(np.float32)), torch.from_numpy(labels)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.items[i]


@dataclass
class TrainingImages:
    """A data set's training images as read (its ``source``): the crops come from them, and validation strips
    are cut from them where the data has no validation images of its own (``carve_strips``)."""

    pairs: list[tuple[np.ndarray, np.ndarray]]  # (raw image (C, H, W), labels (H, W)) as the scheme reads them
    scheme: LabelScheme
    crop: int
    samples: int
    conditions: list[str]


MIN_VAL_ROWS = 16  # the thinnest validation strip worth evaluating (a nucleus across)
WHOLE_IMAGES = 5  # from this many training images on, validation holds out whole images


def carve_strips(source: TrainingImages, fraction: float) -> tuple[RandomCrops, WholeImages, str]:
    """(training crops, validation images, a note), validation evaluated whole under every condition as the
    test images are. With ``WHOLE_IMAGES`` training images or more, ``fraction`` of them (at least one, a seeded
    choice) are held out whole; with fewer, the bottom ``fraction`` of each image's rows (at least
    ``MIN_VAL_ROWS``, leaving at least one crop's height) is validation and the crops come from the rows above.
    Random crops are not items to hold out: a training crop never overlaps a validation image or strip."""
    pairs = source.pairs
    if len(pairs) >= WHOLE_IMAGES:
        kept, held = stratified_indices([0] * len(pairs), fraction, VAL_SEED, at_least_one=True)
        note = f"validation: {len(held)} of the {len(pairs)} training images, whole ({fraction:g}, seed {VAL_SEED})"
        crops = _crops(source.scheme, [pairs[i] for i in sorted(kept)], source.crop, source.samples)
        return crops, WholeImages([pairs[i] for i in sorted(held)], source.conditions), note
    train, val = [], []
    for image, labels in pairs:
        h = image.shape[-2]
        rows = min(max(round(fraction * h), MIN_VAL_ROWS), h - source.crop)
        if rows < MIN_VAL_ROWS:  # too small an image to give up rows: it trains whole
            train.append((image, labels))
            continue
        train.append((image[:, : h - rows], labels[: h - rows]))
        val.append((image[:, h - rows :], labels[h - rows :]))
    if not val:
        raise ValueError(
            f"--val-fraction: no training image is tall enough for a validation strip of {MIN_VAL_ROWS} rows and a "
            f"crop of {source.crop} (give the data val/ and test/ folders, or a smaller --crop)"
        )
    note = (
        f"validation: the bottom {fraction:g} of the rows (at least {MIN_VAL_ROWS}) of {len(val)} training "
        f"image{'s' * (len(val) != 1)}, "
        "evaluated whole; training crops from the rows above; the test images scored once at the end"
    )
    return _crops(source.scheme, train, source.crop, source.samples), WholeImages(val, source.conditions), note


def _crops(scheme: LabelScheme, pairs, crop: int, samples: int) -> RandomCrops:
    """Training crops of (raw image (C, H, W), labels) pairs: images normalized, labels as class indices."""
    images = [(normalize_percentiles(img), scheme.class_indices(torch.from_numpy(m))) for img, m in pairs]
    return RandomCrops(images, crop, samples)


def _meta(in_chans: int, conditions: list[str], scheme: LabelScheme, notes: list[str]) -> dict:
    return {"in_chans": in_chans, "conditions": conditions, "notes": notes, "classes": scheme.names}


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


@SEGMENT_DATA.register("nuclei")
def nuclei(options, *, download: bool = False) -> TaskData:
    """The 2018 Data Science Bowl fluorescence image of nuclei with its instance mask (512×512, 16-bit),
    shipped in the stardist wheel (BSD-3); read through the wheel's file list, never by importing stardist.
    ``--data-dir`` is accepted and unused."""
    if options.classes != 1:
        raise ValueError(f"--classes: nuclei has one class (nuclei against background), got {options.classes}")
    scheme, crop, samples = label_scheme(options.classes), options.crop, options.samples
    image = read_array(package_file("stardist", "stardist/data/images/img2d.tif", extra="segment"))
    labels = scheme.read_mask(package_file("stardist", "stardist/data/images/mask2d.tif", extra="segment"))
    s = NUCLEI_SPLIT_COLUMN
    if crop > min(image[:, :s].shape):
        raise ValueError(f"--crop: expected at most {min(image[:, :s].shape)} for nuclei, got {crop}")
    conditions = list(TEST_CONDITIONS)
    notes = [
        f"nuclei: training on columns 0-{s - 1} of the 512×512 image ({samples} random {crop}×{crop} crops an "
        f"epoch), testing on columns {s}-511, whole, under {', '.join(conditions)}"
    ]
    pairs = [(to_chw(image[:, :s]), labels[:, :s])]
    return TaskData(
        _crops(scheme, pairs, crop, samples),
        WholeImages([(to_chw(image[:, s:]), labels[:, s:])], conditions),
        _meta(1, conditions, scheme, notes),
        source=TrainingImages(pairs, scheme, crop, samples, conditions),
    )


def _pairs(folder: Path, scheme: LabelScheme) -> list[tuple[np.ndarray, np.ndarray, Path]]:
    """(image (C, H, W) as read, labels as the scheme reads them, image path) for ``folder/images`` and
    ``folder/masks``."""
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
        image, labels = to_chw(read_array(path)), scheme.read_mask(mask)
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


@SEGMENT_DATA.register("segfolder")
def segfolder(options, *, download: bool = False) -> TaskData:
    """``--data-dir``'s ``train/{images,masks}`` and ``val/{images,masks}``, ``test/{images,masks}`` or both
    (``data.layout.find_splits``: with both, ``val/`` validates; with one, it is the test split and validation
    is carved from the training images, ``carve_strips``), masks matched to images by file name."""
    if options.data_dir is None:
        raise ValueError("--data-dir: segfolder needs a folder with train/ and val/, each holding images/ and masks/")
    scheme, root, crop, samples = label_scheme(options.classes), Path(options.data_dir), options.crop, options.samples
    paths = find_splits(root, a_folder, "train/ and val/, each holding images/ and masks/")
    train, test = _pairs(paths.train, scheme), _pairs(paths.test, scheme)
    val = None if paths.val is None else _pairs(paths.val, scheme)
    _check_crop(train, crop)
    for path, split in ((paths.test, test), (paths.val, val)):
        if split is not None and train[0][0].shape[0] != split[0][0].shape[0]:
            raise ValueError(
                f"--data-dir: train images have {train[0][0].shape[0]} channels, {path.name} {split[0][0].shape[0]}"
            )
    conditions = ["clean"]
    notes = [
        f"segfolder: {len(train)} training images ({samples} random {crop}×{crop} crops an epoch), "
        + ("" if val is None else f"{len(val)} validation images, ")
        + f"{len(test)} test images{scheme.note}",
        f"segfolder: {paths.note}",
    ]
    pairs = [(img, m) for img, m, _ in train]
    return TaskData(
        _crops(scheme, pairs, crop, samples),
        WholeImages([(img, m) for img, m, _ in test], conditions),
        _meta(train[0][0].shape[0], conditions, scheme, notes),
        source=TrainingImages(pairs, scheme, crop, samples, conditions),
        val=None if val is None else WholeImages([(img, m) for img, m, _ in val], conditions),
    )
