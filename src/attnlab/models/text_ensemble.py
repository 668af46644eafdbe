"""A deep ensemble of text classifiers trained in one run: Lakshminarayanan, Pritzel and Blundell, "Simple and
Scalable Predictive Uncertainty Estimation using Deep Ensembles" (NeurIPS 2017), §2.4: M networks of one
architecture, each from its own random initialization, trained on the same data, their predictions averaged.

    training:  ids -> every member's scores, stacked          (B, M, K)
    eval:      ids -> the members' mean score                  (B, K)

Training returns every member's scores so that the task's loss is the mean of the members' own losses
(``member_losses``): no member's gradient depends on another's output, each member is the network it would be
trained alone, with the same batches (Adam's step does not depend on the loss's scale, up to its ε). The
paper's §3.5 finds random initialization alone diverse enough; here the dropout masks differ too. Inference
averages the scores (capsule lengths, or logits), so eval, predict, calibration and export see one classifier of
the usual shape (B, K). ``M = 1`` is never built: that is the member itself.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["TextEnsemble", "member_losses", "member_mean", "members_of"]


class TextEnsemble(nn.Module):
    """``members`` (at least 2 modules of one architecture, each freshly initialized): (B, M, K) in training,
    their mean (B, K) in eval."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"members: expected at least 2 networks (one is no ensemble), got {len(members)}")
        self.members = nn.ModuleList(members)

    @property
    def max_len(self) -> int:
        """The longest text the members read (they share the configuration)."""
        return self.members[0].max_len

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, L) or (B, L, 1 + S) -> (B, M, K) every member's scores in training, (B, K) their mean in eval."""
        scores = torch.stack([m(ids) for m in self.members], dim=1)
        return scores if self.training else scores.mean(dim=1)


def members_of(model: nn.Module) -> list[nn.Module]:
    """The networks of ``model``: an ensemble's members, else the model alone."""
    return list(model.members) if isinstance(model, TextEnsemble) else [model]


def member_mean(scores: Tensor) -> Tensor:
    """An ensemble's training scores (B, M, K) -> their mean (B, K), what the metrics read; (B, K) unchanged."""
    return scores.mean(dim=1) if scores.dim() == 3 else scores


def member_losses(loss: Callable[[Tensor, Tensor], Tensor], scores: Tensor, target: Tensor) -> Tensor:
    """``loss`` of (B, K) scores, of an ensemble's training scores (B, M, K): the mean of each member's own loss."""
    if scores.dim() != 3:
        return loss(scores, target)
    return torch.stack([loss(scores[:, j], target) for j in range(scores.shape[1])]).mean()
