"""Video data sets: ``moving_digits`` (the default, built from mnist5k) and ``videofolder`` (the user's videos).

A clip is a float tensor (T, C, H, W), normalized; a batch (B, T, C, H, W).

videofolder: ``train/<class>/*.mp4|avi|webm|mkv|mov`` and ``val/<class>/…`` (UCF101's and HMDB51's layout once
split), decoded with PyAV. T frames per clip: in training one random frame from each of T equal segments
(TSN's sparse sampling, Wang et al., ECCV 2016), in evaluation the middle frame of each segment. A video with
fewer than T frames repeats frames (said in a warning); one PyAV cannot decode, or with no frame, is named
in a warning and skipped; a class folder with no readable video is an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._names import Registry
from .images import eval_transform
from .mnist5k import MEAN as MNIST_MEAN
from .mnist5k import STD as MNIST_STD
from .moving_digits import moving_digits_data

__all__ = ["VIDEO_DATA", "VideoData", "VideoFolder", "build_video_data", "read_video", "frame_indices"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class VideoData:
    """Train and test clips, with what a model and predict need to know (saved in the run's meta)."""

    train: Dataset
    test: Dataset
    classes: list[str]
    in_chans: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    notes: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)


VIDEO_DATA: Registry[Callable[..., VideoData]] = Registry("video data", "attnlab train --task video --help")


@VIDEO_DATA.register("moving_digits")
def _moving_digits(*, root: str | None, frames: int, image_size: int | None) -> VideoData:
    if image_size is not None:
        raise ValueError("--image-size: moving_digits has a fixed canvas; the option is for videofolder")
    train, test, classes, facts = moving_digits_data(frames=frames)
    v_min, v_max = facts["speed_px_per_frame"]
    notes = [
        f"moving_digits: {len(train)} train / {len(test)} test clips of {frames} frames, {facts['canvas']}×"
        f"{facts['canvas']} px, one mnist5k digit moving left or right at {v_min:.2f}-{v_max:.2f} px/frame "
        "(test clips: mnist5k's test digits only)"
    ]
    return VideoData(train, test, classes, 1, facts["canvas"], MNIST_MEAN, MNIST_STD, notes, facts)


def frame_indices(count: int, frames: int, generator: torch.Generator | None = None) -> list[int]:
    """T frame indices of a ``count``-frame video: one per segment, random (``generator``) or the middle."""
    if count >= frames:
        edges = torch.linspace(0, count, frames + 1)
        if generator is None:
            return [int((edges[i] + edges[i + 1]) / 2) for i in range(frames)]
        u = torch.rand(frames, generator=generator)
        return [min(count - 1, int(edges[i] + u[i] * (edges[i + 1] - edges[i]))) for i in range(frames)]
    return [i * count // frames for i in range(frames)]  # fewer frames than T: repeat


def read_video(path: str | Path) -> Tensor:
    """All frames of a video as uint8 (N, 3, H, W); ``ValueError`` naming the file when PyAV cannot read it."""
    try:
        import av
    except ImportError as e:
        raise ImportError("videofolder needs PyAV: pip install 'attnlab[video]'") from e
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            frames = [torch.from_numpy(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    except (av.FFmpegError, OSError) as e:
        raise ValueError(f"{path}: PyAV cannot decode it ({e})") from e
    if not frames:
        raise ValueError(f"{path}: no frame")
    return torch.stack(frames).permute(0, 3, 1, 2)


class VideoFolder(Dataset):
    """(path, label) items; decoded at access, T frames sampled TSN-style (random when ``train``)."""

    def __init__(self, items: list[tuple[Path, int]], frames: int, image_size: int, train: bool) -> None:
        self.items, self.frames, self.train = items, frames, train
        self.transform = eval_transform(image_size, IMAGENET_MEAN, IMAGENET_STD)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, label = self.items[i]
        video = read_video(path)
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()))) if self.train else None
        return self.transform(video[frame_indices(len(video), self.frames, generator)]), label


def _scan(split_dir: Path, classes: list[str] | None, frames: int) -> tuple[list[tuple[Path, int]], list[str]]:
    """Readable videos of ``split_dir/<class>/``; unreadable ones are warned about and skipped."""
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
                count = len(read_video(path))
            except ValueError as e:
                warnings.warn(f"skipped {e}", stacklevel=2)
                continue
            if count < frames:
                warnings.warn(f"{path}: {count} frames, fewer than {frames}: frames are repeated", stacklevel=2)
            items.append((path, label))
            readable += 1
        if not readable and (split_dir / name).is_dir():
            raise ValueError(f"{split_dir / name}: no readable video ({', '.join(VIDEO_SUFFIXES)})")
    return items, classes


@VIDEO_DATA.register("videofolder")
def _videofolder(*, root: str | None, frames: int, image_size: int | None) -> VideoData:
    if root is None:
        raise ValueError("--data-dir: videofolder needs a folder with train/<class>/ and val/<class>/")
    size = image_size or 112
    root_path = Path(root)
    train_items, classes = _scan(root_path / "train", None, frames)
    test_items, _ = _scan(root_path / "val", classes, frames)
    notes = [
        f"videofolder: {len(train_items)} train / {len(test_items)} val videos, {len(classes)} classes, "
        f"{frames} frames per clip at {size}×{size} px (--image-size overrides)"
    ]
    return VideoData(
        VideoFolder(train_items, frames, size, train=True),
        VideoFolder(test_items, frames, size, train=False),
        classes,
        3,
        size,
        IMAGENET_MEAN,
        IMAGENET_STD,
        notes,
    )


def build_video_data(name: str, *, root: str | None, frames: int, image_size: int | None) -> VideoData:
    return VIDEO_DATA.get(name)(root=root, frames=frames, image_size=image_size)
