"""A pre-norm transformer encoder layer on ``attnlab.MultiHeadAttention`` (the text and video models' layer).

    x + Dropout(MHA(LN(x), key_padding_mask)),  then  x + Dropout(FFN(LN(x))),  FFN = Linear, GELU, Dropout, Linear

As ``nn.TransformerEncoderLayer(norm_first=True, activation="gelu", batch_first=True)`` with the same weights
(tested), without its dropout on the attention weights.
"""

from __future__ import annotations

from torch import Tensor, nn

from .dropout import Dropout
from .multihead import MultiHeadAttention

__all__ = ["EncoderLayer"]


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer (as ``nn.TransformerEncoderLayer(norm_first=True, activation="gelu")``,
    without its dropout on the attention weights)."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        # no dropout on the attention weights: it would force the unfused math path; dropout acts on the branches
        self.attn = MultiHeadAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), Dropout(dropout), nn.Linear(ffn, dim))
        self.drop = Dropout(dropout)  # nn.Dropout, its CPU mask drawn 5× faster (layers.dropout)

    def forward(self, x: Tensor, pad: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """(B, L, D), padding (B, L) True at pads -> (B, L, D), weights (B, heads, L, L) or None."""
        h = self.norm1(x)
        a, w = self.attn(h, key_padding_mask=pad, need_weights=need_weights, average_attn_weights=False)
        x = x + self.drop(a)
        return x + self.drop(self.ffn(self.norm2(x))), w
