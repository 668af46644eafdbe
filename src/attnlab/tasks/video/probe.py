"""The one-frame check: multinomial logistic regression on the pixels of one frame.

On moving_digits a left clip is a right clip played backwards, so one frame (any of them, its index unknown)
carries no direction: this probe's direction accuracy should stay near half, and its digit accuracy says what a
single frame gives. Fitted on one random frame per training clip (fixed seed), scored on one random frame per
test clip. L-BFGS on the full batch, L2 penalty; plain torch (no scikit-learn needed).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .metrics import label_part

__all__ = ["one_frame_probe"]


def _frames(clips: Tensor, labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One random frame of each uint8 clip (N, T, C, H, W), flattened: (N, C·H·W) pixels in [0, 1], and the
    labels (N,)."""
    pick = torch.randint(clips.shape[1], (clips.shape[0],), generator=generator)
    frames = clips[torch.arange(clips.shape[0]), pick].flatten(1).double() / 255
    return frames, labels


def one_frame_probe(
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    num_classes: int,
    label_parts: Sequence[tuple[str, int]] = (),
    l2: float = 1e-3,
) -> dict[str, float]:
    """``test_acc`` and ``test_<part>_acc`` for each of ``label_parts`` (moving_digits: digit, direction) of the
    one-frame logistic regression; ``train`` and ``test``: (uint8 clips (N, T, C, H, W), labels (N,))."""
    generator = torch.Generator().manual_seed(0)
    x, y = _frames(*train, generator)
    xt, yt = _frames(*test, generator)
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
    scores = {"test_acc": (pred == yt).double().mean().item()}
    for i, (name, _) in enumerate(label_parts):
        same = label_part(pred, label_parts, i) == label_part(yt, label_parts, i)
        scores[f"test_{name}_acc"] = same.double().mean().item()
    return scores
