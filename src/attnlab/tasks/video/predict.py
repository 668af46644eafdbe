"""The video task's predict: a user's video files -> the top classes and the frame weights of each."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.transforms import v2

from ...data.images import eval_transform
from ...data.video import count_frames, frame_indices, read_frames
from ..top_classes import top_classes

__all__ = ["clip_input", "predict_videos"]


def clip_input(frames: Tensor, meta: dict) -> Tensor:
    """uint8 RGB frames (T, 3, H, W) -> the run's input (T, C, S, S): the run's size and normalization; a gray
    model (moving_digits) gets the frames' luminance."""
    if meta["in_chans"] == 1:
        frames = v2.Grayscale()(frames)
    return eval_transform(meta["image_size"], meta["mean"], meta["std"])(frames)


@torch.no_grad()
def predict_videos(model: nn.Module, paths: list[str], meta: dict, top: int) -> list[dict]:
    """One row per file: ``{"input", "top": [(class, probability), …], "frame_weights": [T floats]}``, or
    ``{"input", "error"}`` for a file PyAV cannot read. T frames are sampled as in evaluation (segment middles)."""
    rows = []
    for path in paths:
        try:
            frames = read_frames(path, frame_indices(count_frames(path), meta["num_frames"]))
        except (ValueError, FileNotFoundError) as e:
            rows.append({"input": path, "error": str(e)})
            continue
        clip = clip_input(frames, meta)
        logits, weights = model.forward_with_frame_weights(clip[None])
        rows.append(
            {
                "input": path,
                "top": top_classes(logits[0], meta["classes"], top),
                "frame_weights": [round(float(w), 4) for w in weights[0]],
            }
        )
    return rows
