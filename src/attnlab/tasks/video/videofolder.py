"""videofolder: the user's videos, ``train/<class>/*.mp4|avi|webm|mkv|mov`` and ``val/<class>/…`` (UCF101's and
HMDB51's layout once split), decoded with PyAV at access: each video's frame count read once from its packets when
the folder is scanned, then only the T frames a clip needs converted (``data.video.read_frames``; memory: T
frames, not the video), upright as the video's rotation says.

T frames per clip: in training one random frame from each of T equal segments (TSN's sparse sampling, Wang et
al., ECCV 2016), in evaluation the middle frame of each segment. Training clips are also cropped at random
(``crop_scale``: an area of that fraction of the frame or more, aspect 3:4 to 4:3, resized to the run's side),
the same crop for every frame of a clip, so that the motion stays what it was (no flips: a flip turns a pan left
into a pan right). A video with fewer than T frames repeats frames
(said in a warning); one PyAV cannot decode, or with no frame, is named in a warning and skipped; a class folder
with no readable video is an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ...data.images import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from ...data.video import count_frames, frame_indices, read_frames

__all__ = ["VIDEO_SUFFIXES", "VideoFolder", "measured_side", "scan_split"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov")


class VideoFolder(Dataset):
    """(path, label, frames) items -> (clip (T, 3, S, S) float, ImageNet-normalized, label); decoded at access, T
    frames sampled TSN-style from the video's ``frames`` and, with ``crop_scale`` < 1, one random crop per clip
    (when ``train``)."""

    def __init__(
        self, items: list[tuple[Path, int, int]], num_frames: int, image_size: int, train: bool, crop_scale: float = 1.0
    ) -> None:
        self.items, self.num_frames, self.train = items, num_frames, train
        self.transform = eval_transform(image_size, IMAGENET_MEAN, IMAGENET_STD)
        if train and crop_scale < 1:  # (T, C, H, W) is one batch to a v2 transform: one crop for all frames
            crop = v2.RandomResizedCrop(image_size, scale=(crop_scale, 1.0), antialias=True)
            self.transform = v2.Compose([crop, *self.transform.transforms[2:]])  # then eval's dtype and normalize

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, label, frames = self.items[i]
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()))) if self.train else None
        return self.transform(read_frames(path, frame_indices(frames, self.num_frames, generator))), label


def measured_side(items: list[tuple[Path, int, int]], sample: int = 32) -> int:
    """The median shorter frame side of up to ``sample`` of the videos, from their stream headers (no frame is
    decoded)."""
    import av

    step = max(1, len(items) // sample)
    sides = []
    for path, *_ in items[::step]:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            sides.append(min(stream.codec_context.width, stream.codec_context.height))
    return int(sorted(sides)[len(sides) // 2])


def scan_split(
    split_dir: Path, classes: list[str] | None, num_frames: int
) -> tuple[list[tuple[Path, int, int]], list[str]]:
    """(items: (path, label, frames), classes): the readable videos of ``split_dir/<class>/`` with their frame
    counts (``count_frames``); unreadable ones are warned about and skipped. ``classes`` None: the split's own
    folders (the training split); else those of training."""
    if not split_dir.is_dir():
        raise FileNotFoundError(f"--data-dir: expected a folder {split_dir} with one subfolder per class")
    found = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    if classes is None:
        classes = found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ValueError(f"{split_dir}: classes {unknown} are not among the training classes {classes}")
    if not classes:
        raise ValueError(f"{split_dir}: no class folder")
    items = []
    for label, name in enumerate(classes):
        videos = sorted(p for p in (split_dir / name).glob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        readable = 0
        for path in videos:
            try:
                count = count_frames(path)
            except ValueError as e:
                warnings.warn(f"skipped {e}", stacklevel=2)
                continue
            if count < num_frames:
                warnings.warn(f"{path}: {count} frames, fewer than {num_frames}: frames are repeated", stacklevel=2)
            items.append((path, label, count))
            readable += 1
        if not readable and (split_dir / name).is_dir():
            raise ValueError(f"{split_dir / name}: no readable video ({', '.join(VIDEO_SUFFIXES)})")
    return items, classes
