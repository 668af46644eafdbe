"""moving_digits: clips of one real MNIST digit (from mnist5k) moving in a straight line, as Moving MNIST
(Srivastava, Mansimov, Salakhutdinov, ICML 2015), with a label that needs the order of the frames.

A clip is T frames (default 8) of a ``canvas``×``canvas`` frame (default 32). The digit (28×28) moves at a
constant velocity: horizontal speed v px/frame drawn in [v_min, v_max] (default 2/7 to 4/7: 2 to 4 px over 8
frames, as far as the canvas lets a 28-px digit travel), to the left or to the right, and a vertical drift in
[-v_max/2, v_max/2]; no bounce, so one direction holds for the whole clip. The canvas is small on purpose: an
image model trained on mnist5k's 28×28 digits sees frames close to its own (a larger canvas moves the digit
out of what the transferred backbone knows; see docs/video.md). The label is
``digit·2 + direction`` (0 left, 1 right): 20 classes, "3 left", "3 right", …

No single frame gives the direction away. The trajectory's *middle* (not its start) is drawn uniformly among
the positions that keep the digit inside the canvas for all T frames, so the position at frame t is
``centre ± (t - (T-1)/2)·v``: over the frames of a clip, a right-moving digit visits exactly the positions a
left-moving one visits, in the opposite order. A left clip is a right clip played backwards; a model that sees
one frame, or the frames as an unordered set (mean pooling), is at chance on the direction.

Clips are a deterministic function of (split, index): digit i of mnist5k's split (test clips use only
mnist5k's test digits, never seen by an image model trained on its train split) and a motion drawn from
``numpy.random.default_rng((CLIP_SEED, split, i))``. Nothing is written to disk; every run sees the same
clips. Sub-pixel positions are rendered by bilinear resampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ...data.mnist5k import MEAN, STD, read_digits, stratified_split

__all__ = ["DIRECTIONS", "LABEL_PARTS", "Motion", "MovingDigits", "draw_motions", "moving_digits_data", "render_clips"]

CLIP_SEED = 2015  # the motions' seed: fixed, so that every run (any --seed) sees the same clips
DIRECTIONS = ("left", "right")
LABEL_PARTS = (("digit", 10), ("direction", len(DIRECTIONS)))  # label = digit·2 + direction
SPLITS = {"train": 0, "test": 1}


@dataclass(frozen=True)
class Motion:
    """Positions (top-left corner, px) of the digit in a clip's frames: ``x[t]``, ``y[t]``."""

    x: np.ndarray  # (T,)
    y: np.ndarray  # (T,)
    direction: int  # 0 left, 1 right


def draw_motions(
    count: int, split: str, *, num_frames: int, canvas: int, v_min: float, v_max: float, digit: int = 28
) -> list[Motion]:
    """The motions of ``count`` clips of ``split``; the middle of each trajectory is drawn uniformly."""
    room = canvas - digit  # the top-left corner stays in [0, room]
    if (num_frames - 1) * v_max > room:
        raise ValueError(
            f"moving_digits: {num_frames} frames at up to {v_max} px/frame travel {(num_frames - 1) * v_max:g} px, "
            f"more than the {room} px a {canvas}-px canvas leaves a {digit}-px digit"
        )
    offsets = np.arange(num_frames) - (num_frames - 1) / 2  # (T,), symmetric around 0
    motions = []
    for i in range(count):
        rng = np.random.default_rng((CLIP_SEED, SPLITS[split], i))
        direction = int(rng.integers(2))
        vx = rng.uniform(v_min, v_max) * (1 if direction else -1)
        vy = rng.uniform(-v_max / 2, v_max / 2)
        centre = [rng.uniform(abs(v) * (num_frames - 1) / 2, room - abs(v) * (num_frames - 1) / 2) for v in (vx, vy)]
        motions.append(Motion(centre[0] + offsets * vx, centre[1] + offsets * vy, direction))
    return motions


def render_clips(digits: Tensor, motions: list[Motion], canvas: int) -> Tensor:
    """Digits (N, 28, 28) uint8 at their motions' positions -> clips (N, T, 1, canvas, canvas) uint8."""
    n, size = digits.shape[0], digits.shape[-1]
    num_frames = len(motions[0].x)
    x = torch.tensor(np.stack([m.x for m in motions]), dtype=torch.float32)  # (N, T)
    y = torch.tensor(np.stack([m.y for m in motions]), dtype=torch.float32)
    # grid_sample's normalized coordinates (align_corners=False): the canvas pixel centre p (px) samples the
    # digit at p - position; the digit's pixel centres are at (k + 0.5) / size * 2 - 1.
    p = (torch.arange(canvas, dtype=torch.float32) + 0.5)[None, None, :]  # (1, 1, canvas)
    gx = ((p - x[..., None]) / size * 2 - 1).unsqueeze(-2).expand(n, num_frames, canvas, canvas)
    gy = ((p - y[..., None]) / size * 2 - 1).unsqueeze(-1).expand(n, num_frames, canvas, canvas)
    grid = torch.stack([gx, gy], dim=-1).reshape(n * num_frames, canvas, canvas, 2)
    source = digits.float().repeat_interleave(num_frames, dim=0)[:, None]  # (N·T, 1, 28, 28)
    out = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8).view(n, num_frames, 1, canvas, canvas)


class MovingDigits(Dataset):
    """Clips (T, 1, H, W) float, MNIST-normalized, with labels ``digit·2 + direction`` (``LABEL_PARTS``)."""

    def __init__(self, clips: Tensor, labels: Tensor) -> None:
        self.clips, self.labels = clips, labels  # (N, T, 1, H, W) uint8, (N,)

    def arrays(self) -> tuple[Tensor, Tensor]:
        """All clips as they are stored, uint8 (N, T, 1, H, W), and their labels (N,): for classical baselines."""
        return self.clips, self.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = self.clips[i].float().div_(255).sub_(MEAN[0]).div_(STD[0])
        return x, int(self.labels[i])


def moving_digits_data(
    *, num_frames: int = 8, canvas: int = 32, v_min: float = 2 / 7, v_max: float = 4 / 7
) -> tuple[MovingDigits, MovingDigits, list[str], dict]:
    """(train, test, class names, facts): one clip per mnist5k digit, 4,000 train and 1,000 test clips."""
    pixels, labels = read_digits()
    digits = torch.from_numpy(pixels.reshape(-1, 28, 28).astype(np.uint8))
    train_idx, test_idx = stratified_split(labels)
    splits = []
    for split, idx in (("train", train_idx), ("test", test_idx)):
        motions = draw_motions(len(idx), split, num_frames=num_frames, canvas=canvas, v_min=v_min, v_max=v_max)
        clips = render_clips(digits[idx], motions, canvas)
        direction = torch.tensor([m.direction for m in motions])
        splits.append(MovingDigits(clips, torch.from_numpy(labels[idx]) * len(DIRECTIONS) + direction))
    classes = [f"{d} {w}" for d in range(10) for w in DIRECTIONS]
    facts = {"num_frames": num_frames, "canvas": canvas, "speed_px_per_frame": [v_min, v_max]}
    return splits[0], splits[1], classes, facts
