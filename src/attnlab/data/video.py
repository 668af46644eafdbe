"""Video decoding that tasks share: every frame of a file (PyAV) and TSN's choice of T frames from them.

The video task's data sets (``moving_digits``, ``videofolder``) live in ``attnlab.tasks.video``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

__all__ = ["frame_indices", "read_video"]


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


def read_video(path: str | Path) -> Tensor:
    """All frames of a video as uint8 (N, 3, H, W); ``ValueError`` naming the file when PyAV cannot read it."""
    try:
        import av
    except ImportError as e:
        raise ImportError("reading videos needs PyAV: pip install 'attnlab[video]'") from e
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
