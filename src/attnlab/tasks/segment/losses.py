"""The segmentation losses: binary cross-entropy + soft Dice on one logit map (foreground / background), and
cross-entropy + the soft Dice averaged over the classes on N + 1 maps (background first).

    logits (B, maps, H, W), target class indices (B, H, W) int64 -> a scalar (the batch's loss)
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["soft_dice_loss", "multiclass_soft_dice_loss", "binary_loss", "multiclass_loss"]


def soft_dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """1 − (2 Σ p·y + ε) / (Σ p + Σ y + ε) over the batch, p = σ(logits)."""
    p = logits.sigmoid()
    y = target.to(p.dtype)
    return 1 - (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)


def multiclass_soft_dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """The mean over the classes 1…N (not the background) of 1 − (2 Σ p·y + ε) / (Σ p + Σ y + ε), p = softmax."""
    p = logits.softmax(1)[:, 1:]  # (B, N, H, W)
    y = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(p.dtype)
    dims = (0, 2, 3)
    return 1 - ((2 * (p * y).sum(dims) + eps) / (p.sum(dims) + y.sum(dims) + eps)).mean()


def binary_loss(logits: Tensor, target: Tensor) -> Tensor:
    """One logit map (B, 1, H, W) against the foreground (B, H, W) in {0, 1}: BCE + soft Dice."""
    return F.binary_cross_entropy_with_logits(logits[:, 0], target.to(logits.dtype)) + soft_dice_loss(
        logits[:, 0], target
    )


def multiclass_loss(logits: Tensor, target: Tensor) -> Tensor:
    """N + 1 logit maps (B, N + 1, H, W) against class indices (B, H, W) in 0…N: cross-entropy + the classes'
    soft Dice."""
    return F.cross_entropy(logits, target) + multiclass_soft_dice_loss(logits, target)
