"""Attention added to a pretrained network without losing it: every module starts as the identity.

``attention_init="identity"`` wraps each module of a ResNet in ``IdentityStart``: a residual blend whose weight
starts at 0 (ReZero, Bachlechner et al., 2020; SkipInit, De & Smith, NeurIPS 2020), so a torchvision-pretrained
ResNet with any module added computes the pretrained logits at step 0, and then learns how much of the module to
take. One rule for every module, gating or not (SE's σ(·)·x, non-local's x + W_z y, SK's kernel mixture, …): a
per-module rule (a zero last layer with the gate shifted to 1) does not exist for a module that is not a gate, and
two rules would make the two kinds of module start differently.

A module that replaces the block's 3×3 conv (placement "conv": SK, split attention, BoTNet, …) is blended with
that conv: the pretrained conv + BN stay in the block (their torchvision keys load), and the block computes
conv(x) + α·(module(x) − conv(x)), the pretrained block at α = 0.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ATTENTION_INITS", "IdentityStart"]

# "paper": each module's own initialization (its paper's, the default); "identity": IdentityStart around it
ATTENTION_INITS = ("paper", "identity")


class IdentityStart(nn.Module):
    """out = start + α · (attention(x) − start), α a learned scalar that starts at 0; start = x by default.

    At α = 0 the output is ``start`` exactly (x, or the pretrained conv's output the module replaces). α's gradient,
    Σ (attention(x) − start) · ∂L/∂out, is not zero, so α moves at the first step, and the module's own weights get
    gradients from then on (∂out/∂θ = α ∂attention(x)/∂θ). The module keeps its paper's initialization inside.
    Keys: ``attention.*`` (the module's own) and ``alpha``.
    """

    def __init__(self, attention: nn.Module) -> None:
        super().__init__()
        self.attention = attention
        like = next(attention.parameters(), None)
        f = {} if like is None else {"device": like.device, "dtype": like.dtype}
        self.alpha = nn.Parameter(torch.zeros((), **f))

    def forward(self, x: Tensor, start: Tensor | None = None) -> Tensor:
        start = x if start is None else start
        return start + self.alpha * (self.attention(x) - start)
