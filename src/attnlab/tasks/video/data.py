"""The video task's data sets, one builder shape (``builder(options, *, download) -> TaskData``): ``moving_digits``
(the default, built from mnist5k in memory) and ``videofolder`` (the user's videos, see ``videofolder``).

A clip is a float tensor (T, C, H, W), normalized; a batch (B, T, C, H, W). Each builder's ``meta``: classes,
channels, frame size, mean and std (predict normalizes a user's video by them), ``num_frames``, ``notes``, and,
where a class is made of parts, ``label_parts``: [(name, count), …] with class = the parts' mixed-radix number
(moving_digits: [("digit", 10), ("direction", 2)], class = digit·2 + direction); the metric and the baseline
report each part's accuracy. A data set held in memory gives its raw clips as ``source`` (``ClipArrays``), for
the one-frame baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from ...data.images import IMAGENET_MEAN, IMAGENET_STD
from ...data.layout import a_folder, find_splits
from ...data.mnist5k import MEAN as MNIST_MEAN
from ...data.mnist5k import STD as MNIST_STD
from ..base import DataSets, TaskData
from .moving_digits import LABEL_PARTS, moving_digits_data
from .videofolder import VideoFolder, measured_side, scan_split

__all__ = ["VIDEO_DATA", "ClipArrays", "moving_digits", "videofolder"]

VIDEO_DATA = DataSets("video")

VIDEOFOLDER_SIZE = 112  # the largest default frame side of videofolder clips (smaller videos keep their own)


@dataclass
class ClipArrays:
    """A data set's clips as it stores them, per split: uint8 clips (N, T, C, H, W) and int labels (N,)."""

    train: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]


def _meta(classes, in_chans: int, size: int, mean, std, num_frames: int, notes: list[str], **more) -> dict:
    return {
        "classes": list(classes),
        "in_chans": in_chans,
        "image_size": size,
        "mean": list(mean),
        "std": list(std),
        "num_frames": num_frames,
        "notes": notes,
        **more,
    }


@VIDEO_DATA.register("moving_digits")
def moving_digits(options, *, download: bool = False) -> TaskData:
    """One real mnist5k digit moving left or right (see ``moving_digits``); nothing to download."""
    if options.image_size is not None:
        raise ValueError("--image-size: moving_digits has a fixed canvas; the option is for videofolder")
    train, test, classes, facts = moving_digits_data(num_frames=options.num_frames)
    v_min, v_max = facts["speed_px_per_frame"]
    notes = [
        f"moving_digits: {len(train)} train / {len(test)} test clips of {options.num_frames} frames, "
        f"{facts['canvas']}×{facts['canvas']} px, one mnist5k digit moving left or right at {v_min:.2f}-{v_max:.2f} "
        "px/frame (test clips: mnist5k's test digits only)"
    ]
    parts = [list(p) for p in LABEL_PARTS]
    meta = _meta(classes, 1, facts["canvas"], MNIST_MEAN, MNIST_STD, options.num_frames, notes, label_parts=parts)
    return TaskData(train, test, meta, source=ClipArrays(train.arrays(), test.arrays()), labels=train.labels.tolist())


@VIDEO_DATA.register("videofolder")
def videofolder(options, *, download: bool = False) -> TaskData:
    """``--data-dir``'s ``train/<class>/`` and ``val/<class>/``, ``test/<class>/`` or both (``data.layout``: with
    both, ``val/`` validates; with one, it is the test split and validation is carved from ``train/``) videos, at
    ``--image-size`` (default: the videos' median shorter side, at most 112)."""
    if options.data_dir is None:
        raise ValueError("--data-dir: videofolder needs a folder with train/<class>/ and val/<class>/")
    num_frames, root = options.num_frames, Path(options.data_dir)
    paths = find_splits(root, a_folder, "train/<class>/ and val/<class>/ video folders")
    train_items, classes = scan_split(paths.train, None, num_frames)
    size = options.image_size or min(VIDEOFOLDER_SIZE, measured_side(train_items))
    val_items = None if paths.val is None else scan_split(paths.val, classes, num_frames)[0]
    test_items, _ = scan_split(paths.test, classes, num_frames)
    notes = [
        f"videofolder: {len(train_items)} train / {len(test_items)} test videos, {len(classes)} classes, "
        f"{num_frames} frames per clip at {size}×{size} px ("
        + (
            "--image-size"
            if options.image_size
            else f"the videos' shorter side, at most {VIDEOFOLDER_SIZE}; --image-size overrides"
        )
        + ")",
        f"videofolder: {paths.note}",
    ]
    train = VideoFolder(train_items, num_frames, size, train=True, crop_scale=options.crop_scale)
    test = VideoFolder(test_items, num_frames, size, train=False)
    val = None if val_items is None else VideoFolder(val_items, num_frames, size, train=False)
    meta = _meta(classes, 3, size, IMAGENET_MEAN, IMAGENET_STD, num_frames, notes)
    return TaskData(
        train,
        test,
        meta,
        val=val,
        labels=[label for _, label, _ in train_items],
        train_eval=VideoFolder(train_items, num_frames, size, train=False),
    )
