"""The text encoder pretrained as a masked language model (Devlin et al., BERT, NAACL 2019, §3.1): some tokens of
each text are hidden and the encoder learns to tell them from their context; the text task then starts from its
weights (``attnlab train --task text --backbone RUN``).

    ids (B, L), some replaced -> TextTransformer's embeddings and encoder layers -> h (B, L, D)
    logits of the hidden positions only: h[hidden] (M, D) @ Eᵀ + b  (M, V)

The output projection is the token embedding E itself (tied, as BERT's), plus a bias per token: no (D, V)
matrix of its own to learn from few texts. Only the hidden positions are projected in training (M ≈ 15 % of the
tokens): the (B, L, V) logits of every position would cost ~7× the encoder's own multiply-adds here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .registry import register_model
from .text import TextTransformer

__all__ = ["IGNORE", "MaskedLanguageModel"]

IGNORE = -100  # a target that is not hidden (cross-entropy's ignore_index)


class MaskedLanguageModel(nn.Module):
    """``encoder``: a ``TextTransformer`` (keyword arguments as its, but the head, which pretraining never uses:
    "mean", so the state dict's ``encoder.*`` keys are those of the text task's model); a bias per token."""

    def __init__(self, **encoder_kwargs) -> None:
        super().__init__()
        encoder_kwargs = {**encoder_kwargs, "head": "mean", "num_classes": 2}
        self.encoder = TextTransformer(**encoder_kwargs)
        self.bias = nn.Parameter(torch.zeros(self.encoder.embed.num_embeddings))

    def describe(self) -> tuple[str, str]:
        return "masked-token logits (tied embedding)", f"{len(self.encoder.layers)} layers"

    def forward(self, ids: Tensor, targets: Tensor | None = None) -> Tensor:
        """ids (B, L) int64 -> logits (M, V) of the hidden positions (``targets`` (B, L) != ``IGNORE``), or of
        every position (B, L, V) without ``targets``."""
        h, _, _ = self.encoder.features(ids)
        if targets is not None:
            h = h[targets[:, : h.shape[1]] != IGNORE]  # (M, D)
        return h @ self.encoder.embed.weight.T + self.bias


@register_model("text_mlm")
def text_mlm(**kwargs) -> MaskedLanguageModel:
    """The text encoder with a masked-token output, for pretraining (task ``text_mlm``)."""
    return MaskedLanguageModel(**kwargs)
