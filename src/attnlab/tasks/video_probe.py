"""The one-frame direction check of moving_digits: multinomial logistic regression on the pixels of one frame.

A left clip is a right clip played backwards, so one frame (any of them, its index unknown) carries no
direction: this probe's direction accuracy should stay near half, and its digit accuracy says what a single
frame gives. Fitted on one random frame per training clip (fixed seed), scored on one random frame per test
clip. L-BFGS on the full batch, L2 penalty; plain torch (no scikit-learn needed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["one_frame_probe"]


def _frames(clips: Dataset, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One random frame per clip, flattened: (N, H·W) pixels in [0, 1], and the labels (N,)."""
    data = clips.clips  # (N, T, 1, H, W) uint8
    pick = torch.randint(data.shape[1], (data.shape[0],), generator=generator)
    frames = data[torch.arange(data.shape[0]), pick].flatten(1).double() / 255
    return frames, clips.labels


def one_frame_probe(train: Dataset, test: Dataset, num_classes: int, l2: float = 1e-3) -> dict[str, float]:
    """val_acc, val_digit_acc, val_direction_acc of the one-frame logistic regression (class = digit·2 + dir)."""
    generator = torch.Generator().manual_seed(0)
    x, y = _frames(train, generator)
    xt, yt = _frames(test, generator)
    mean = x.mean(0)
    x, xt = x - mean, xt - mean
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + l2 * w.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        pred = (xt @ w + b).argmax(1)
    return {
        "val_acc": (pred == yt).double().mean().item(),
        "val_digit_acc": (pred // 2 == yt // 2).double().mean().item(),
        "val_direction_acc": (pred % 2 == yt % 2).double().mean().item(),
    }
