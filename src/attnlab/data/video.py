"""Video decoding that tasks share: a video's frame count from its packets, the T frames a clip needs (PyAV), and
TSN's choice of T frames.

A user's videos are long and large where the tasks need T frames of at most 112 px: a phone's 30 s at 1080p is
900 frames, 5.6 GB as RGB. So ``count_frames`` reads the packets without decoding them, and ``read_frames``
decodes in order but converts to RGB only the frames asked for and stops after the last: its memory is T frames.
Frames are turned upright as the video's display matrix says (``VideoFrame.rotation``: phones store portrait
video as landscape frames and a rotation), as a player shows them.

The video task's data sets (``moving_digits``, ``videofolder``) live in ``attnlab.tasks.video``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["count_frames", "frame_indices", "read_frames", "read_video"]


def frame_indices(count: int, num_frames: int, generator: torch.Generator | None = None) -> list[int]:
    """T = ``num_frames`` indices into a ``count``-frame video, one per equal segment (TSN's sparse sampling,
    Wang et al., ECCV 2016): a random one (``generator``) or the middle. Fewer frames than T: frames repeat."""
    if count >= num_frames:
        edges = torch.linspace(0, count, num_frames + 1)
        if generator is None:
            return [int((edges[i] + edges[i + 1]) / 2) for i in range(num_frames)]
        u = torch.rand(num_frames, generator=generator)
        return [min(count - 1, int(edges[i] + u[i] * (edges[i + 1] - edges[i]))) for i in range(num_frames)]
    return [i * count // num_frames for i in range(num_frames)]


def _av():
    try:
        import av
    except ImportError as e:
        raise ImportError("reading videos needs PyAV: pip install 'attnlab[video]'") from e
    return av


def _rgb(frame) -> Tensor:
    """A decoded frame -> uint8 (3, H, W), upright: turned counterclockwise by its display rotation."""
    x = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
    quarter = round(getattr(frame, "rotation", 0) / 90) % 4  # PyAV >= 13; multiples of 90° (what cameras write)
    return torch.rot90(x, quarter, dims=(1, 2)).contiguous() if quarter else x


def _opened(path: str | Path, use):
    """``use(container, stream)`` on the file's first video stream; ``ValueError`` naming the file when PyAV cannot
    read it or it has none."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            return use(container, container.streams.video[0])
    except (av.FFmpegError, OSError) as e:
        raise ValueError(f"{path}: PyAV cannot decode it ({e})") from e


def count_frames(path: str | Path) -> int:
    """The number of frames of a video, from its packets (demuxed, not decoded: one packet a frame in the
    containers users have); ``ValueError`` naming the file for none or an unreadable file."""
    count = _opened(path, lambda c, stream: sum(1 for packet in c.demux(stream) if packet.size))
    if not count:
        raise ValueError(f"{path}: no frame")
    return count


def read_frames(path: str | Path, indices: Sequence[int]) -> Tensor:
    """The frames at ``indices`` (any order, repeats allowed) as uint8 (T, 3, H, W), upright. A stream that ends
    before an index (a frame count from the packets a decoder disagrees with) gives its last frame there."""
    wanted, last = set(indices), max(indices)

    def decode(container, stream) -> dict[int, Tensor]:
        kept, frame = {}, None
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                kept[i] = _rgb(frame)
            if i >= last:
                break
        if frame is None:
            raise ValueError(f"{path}: no frame")
        end = _rgb(frame) if i not in kept else kept[i]
        return {j: kept.get(j, end) for j in wanted}

    kept = _opened(path, decode)
    return torch.stack([kept[i] for i in indices])


def read_video(path: str | Path) -> Tensor:
    """All frames of a video as uint8 (N, 3, H, W), upright; ``ValueError`` naming the file when PyAV cannot read
    it: every frame in memory, for short clips (the tests' reference); the tasks read ``read_frames`` of
    ``count_frames``."""

    def decode(container, stream) -> list[Tensor]:
        return [_rgb(f) for f in container.decode(stream)]

    frames = _opened(path, decode)
    if not frames:
        raise ValueError(f"{path}: no frame")
    return torch.stack(frames)
