"""Text classification: a transformer encoder on ``attnlab.MultiHeadAttention``, then a head.

    ids (B, L) -> token + hashed-n-gram + position embeddings (B, L, D)
        (or (B, L, 1 + S): each token's id and its character n-grams, whose embeddings' mean is added: subwords)
               -> depth × pre-norm encoder layer: x + MHA(LN(x), key_padding_mask), x + FFN(LN(x))
               -> head: "capsule" (dynamic routing to one capsule per class; the score is its length),
                        "mean" (masked mean pooling + linear), "cls" (a class token + linear)

Padding (id ``PAD`` = 0, the one definition: the text task's vocabulary and batches use it) is passed to
attention as ``key_padding_mask`` (the formula's own masking), never pooled and never routed: a text's scores do
not depend on how much padding its batch adds.

Capsules (Sabour, Frosst, Hinton, "Dynamic Routing Between Capsules", NeurIPS 2017):

    u_i = squash(W_p h_t)                    P primary capsules of dim d_p per token t    (B, L, P, d_p)
    û_j|i = W_pj u_i                         W shared over positions, one per primary type p (P, K, d_c, d_p)
    b_ij = 0; r times:  c_i = softmax_j(b_i)  (Eq. 3),  s_j = Σ_i c_ij û_j|i  (Eq. 2),
                        v_j = squash(s_j) = |s|²/(1+|s|²) · s/|s|  (Eq. 1),  b_ij += û_j|i · v_j
    score_j = |v_j|;  margin loss  T_j max(0, m⁺ − |v_j|)² + λ (1 − T_j) max(0, |v_j| − m⁻)²  (Eq. 4)

``orphan=True`` adds Zhao et al.'s (EMNLP 2018) orphan class capsule: routing can send background words to
it, and its length is left out of the scores. The coupling coefficients c pass through the submodule ``gate``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.dropout import Dropout
from ..layers.encoder import EncoderLayer
from .registry import register_model

__all__ = ["PAD", "TEXT_HEADS", "TextTransformer", "CapsuleHead", "MaskedMeanHead", "ClsHead", "squash", "margin_loss"]

PAD = 0  # the padding id: never attended to, pooled or routed
HASH_PRIME = 1_000_003


def squash(s: Tensor, dim: int = -1, eps: float = 1e-8) -> Tensor:
    """Eq. 1: short vectors shrink to almost 0, long ones to just under 1; the direction is kept."""
    n2 = s.square().sum(dim, keepdim=True)
    return s * (n2 / (1 + n2)) / torch.sqrt(n2 + eps)


def margin_loss(
    lengths: Tensor,
    target: Tensor,
    m_pos: float = 0.9,
    m_neg: float = 0.1,
    lam: float = 0.5,
    weight: Tensor | None = None,
) -> Tensor:
    """Eq. 4, summed over classes, averaged over the batch; with ``weight`` (K,), a weighted average by each
    sample's class weight, as ``F.cross_entropy(weight=…)`` averages.

    ``target``: (B,) class indices, or (B, K) multi-hot 0/1 floats (several labels per text: eq. 4 is already a
    per-class loss, T_k = 1 for each of a text's labels; no ``weight`` then)."""
    if target.is_floating_point():
        if target.shape != lengths.shape or weight is not None:
            raise ValueError(
                f"margin_loss: a multi-hot target must have the lengths' shape {tuple(lengths.shape)} and no weight; "
                f"got {tuple(target.shape)}" + (" and a weight" if weight is not None else "")
            )
        t = target.to(lengths.dtype)
    else:
        t = F.one_hot(target, lengths.shape[-1]).to(lengths.dtype)
    loss = (t * F.relu(m_pos - lengths).square() + lam * (1 - t) * F.relu(lengths - m_neg).square()).sum(-1)
    if weight is None:
        return loss.mean()
    w = weight.to(loss.dtype)[target]
    return (w * loss).sum() / w.sum()


class MaskedMeanHead(nn.Module):
    """Masked mean of the token features, then a linear layer: logits (B, K)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, h: Tensor, pad: Tensor) -> Tensor:
        keep = (~pad).to(h.dtype)[..., None]
        return self.fc((h * keep).sum(1) / keep.sum(1).clamp(min=1))


class ClsHead(nn.Module):
    """The class token's features (position 0, prepended by the model), then a linear layer: logits (B, K)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, h: Tensor, pad: Tensor) -> Tensor:
        return self.fc(h[:, 0])


class CapsuleHead(nn.Module):
    """Primary capsules from the tokens, dynamic routing to one capsule per class; scores = lengths (B, K)."""

    def __init__(
        self,
        dim: int,
        num_classes: int,
        *,
        primary: int = 8,
        primary_dim: int = 8,
        class_dim: int = 16,
        iterations: int = 3,
        orphan: bool = False,
    ) -> None:
        super().__init__()
        if iterations < 1:
            raise ValueError(f"iterations: expected a positive int, got {iterations}")
        self.primary, self.primary_dim, self.iterations = primary, primary_dim, iterations
        self.num_classes, self.outputs = num_classes, num_classes + int(orphan)
        self.proj = nn.Linear(dim, primary * primary_dim)  # W_p
        self.weight = nn.Parameter(0.05 * torch.randn(primary, self.outputs, class_dim, primary_dim))  # W_ij
        self.gate = nn.Identity()  # the coupling coefficients c (B, L, P, K), for hooks

    def route(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """Routing by agreement on primary capsules u (B, P, L, d_p), zero at padding ->
        (class capsules v (B, K, d_c), coupling coefficients c (B, P, L, K)).

        û_j|i = W_pj u_i is never formed: W is shared over positions, so Σ_i c_ij û_j|i = Σ_p W_pj (Σ_l c_ij u_i)
        and û_j|i · v_j = u_i · (W_pjᵀ v_j): the same numbers, with d_c/d_p-fold fewer multiply-adds and no
        (B, L·P, K, d_c) tensor."""
        keep = (u.abs().sum(-1, keepdim=True) > 0).to(u.dtype)  # (B, P, L, 1): padded inputs are zero
        b = u.new_zeros(*u.shape[:-1], self.outputs)  # (B, P, L, K)
        for r in range(self.iterations):
            # Eq. 3 over the K classes, written out: torch's softmax is slow on a last dimension of 2 or 3
            e = (b - b.amax(dim=-1, keepdim=True)).exp()
            c = e * (keep / e.sum(dim=-1, keepdim=True))  # padded inputs couple to nothing
            z = c.transpose(-1, -2) @ u  # Σ_l c u: (B, P, K, d_p)
            v = squash(torch.einsum("bpkd,pkcd->bkc", z, self.weight))  # Eq. 2 and 1: (B, K, d_c)
            if r < self.iterations - 1:
                wtv = torch.einsum("bkc,pkcd->bpkd", v, self.weight)  # W_pjᵀ v_j: (B, P, K, d_p)
                b = b + u @ wtv.transpose(-1, -2)  # agreement û_j|i · v_j: (B, P, L, K)
        return v, c

    def forward(self, h: Tensor, pad: Tensor) -> Tensor:
        B, L, _ = h.shape
        u = squash(self.proj(h).view(B, L, self.primary, self.primary_dim))  # (B, L, P, d_p)
        u = (u * (~pad).to(h.dtype)[..., None, None]).transpose(1, 2).contiguous()  # (B, P, L, d_p), pads zeroed
        v, c = self.route(u)
        self.gate(c.permute(0, 2, 1, 3))  # (B, L, P, K)
        return v.norm(dim=-1)[:, : self.num_classes]


TEXT_HEADS = {"capsule": CapsuleHead, "mean": MaskedMeanHead, "cls": ClsHead}


class TextTransformer(nn.Module):
    """Embeddings, ``depth`` encoder layers, a head; see the module docstring.

    Args:
        vocab_size: token ids 0 (padding) … vocab_size − 1.
        num_classes: outputs.
        dim, depth, heads, ffn: width, layers, attention heads, feed-forward width (default 2·dim).
        max_len: the longest text (positions learned up to it).
        head: "capsule", "mean" or "cls" (``TEXT_HEADS``).
        ngram_buckets: buckets of the hashed n-gram embeddings, one table for every order (0: none); character
            bigrams and trigrams carry much of Chinese words' meaning (fastText's n-gram hashing).
        ngram_order: the longest n-gram hashed (2: bigrams, 3: bigrams and trigrams, …).
        subword_buckets: buckets of the words' hashed character n-grams (0: none); with them the input is
            (B, L, 1 + S): each token's id, then its n-grams' buckets (0: none), whose embeddings' mean is added
            to the token's (fastText's subwords, Bojanowski et al., TACL 2017; ``tasks.text.tokens.Subwords``).
        dropout: on embeddings, attention and feed-forward.
        orphan, iterations, capsules: the capsule head's orphan class, routing iterations, primary capsules per
            token (``CapsuleHead``'s ``primary``).

    The text task's options carry the same names (``--ngram-buckets``, ``--ngram-order``, ``--capsules``).
    """

    def __init__(
        self,
        *,
        vocab_size: int = 6000,
        num_classes: int = 2,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        ffn: int | None = None,
        max_len: int = 128,
        head: str = "capsule",
        ngram_buckets: int = 0,
        ngram_order: int = 2,
        subword_buckets: int = 0,
        dropout: float = 0.1,
        orphan: bool = False,
        iterations: int = 3,
        capsules: int = 8,
    ) -> None:
        super().__init__()
        if head not in TEXT_HEADS:
            raise ValueError(f"head: expected one of {tuple(TEXT_HEADS)}, got {head!r}")
        for name, value in (
            ("vocab_size", vocab_size),
            ("num_classes", num_classes),
            ("dim", dim),
            ("max_len", max_len),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name}: expected an int >= 2, got {value!r}")
        if dim % heads:
            raise ValueError(f"dim: expected a multiple of heads ({heads}), got {dim}")
        if ngram_order < 2:
            raise ValueError(f"ngram_order: expected an int >= 2, got {ngram_order!r}")
        self.max_len, self.ngram_buckets, self.ngram_order = max_len, ngram_buckets, ngram_order
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        # the hashed n-gram table of every order (bigrams, trigrams, …): called ``bigram`` since the first
        # checkpoints, whose state_dict key ``bigram.weight`` it keeps; bucket 0 is "no n-gram"
        self.bigram = nn.Embedding(ngram_buckets, dim, padding_idx=0) if ngram_buckets else None
        # bucket 0 ("no n-gram") weighs 0 in each token's mean (``embeddings``): a weighted sum, which ONNX
        # exports, where EmbeddingBag's padding_idx does not
        self.subword = nn.EmbeddingBag(subword_buckets, dim, mode="sum") if subword_buckets else None
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if head == "cls" else None
        self.pos = nn.Parameter(0.02 * torch.randn(1, max_len + int(head == "cls"), dim))
        self.drop = Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, ffn or 2 * dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        kwargs = {"orphan": orphan, "iterations": iterations, "primary": capsules} if head == "capsule" else {}
        self.head = TEXT_HEADS[head](dim, num_classes, **kwargs)
        nn.init.normal_(self.embed.weight, std=0.02)
        for table in (self.bigram, self.subword):  # (bucket 0's row: no gradient, in the subwords' mean weight 0)
            if table is not None:
                nn.init.normal_(table.weight, std=0.02)

    def ngram_ids(self, ids: Tensor, n: int) -> Tensor:
        """Hash of each n-gram starting at a position into 1 … buckets − 1 (0 where it reaches padding or the end);
        each order n hashes with its own salt, so bigrams and trigrams share the table without colliding by design."""
        h = ids * 0 + n  # the salt
        valid = ids != PAD
        for k in range(n):
            tok = F.pad(ids[:, k:], (0, k), value=PAD)
            h = (h * HASH_PRIME + tok) % 2_147_483_647
            valid = valid & (tok != PAD)
        return torch.where(valid, h % (self.ngram_buckets - 1) + 1, torch.zeros_like(h))

    def split(self, ids: Tensor) -> tuple[Tensor, Tensor | None]:
        """ids (B, L) or (B, L, 1 + S) -> (token ids (B, L), subword buckets (B, L, S) or None)."""
        if ids.dim() == 2:
            if self.subword is not None:
                raise ValueError("ids: this model reads subwords, expected (B, L, 1 + S) token and n-gram ids")
            return ids, None
        if self.subword is None:
            raise ValueError(f"ids: expected (B, L) token ids (this model has no subwords), got {tuple(ids.shape)}")
        return ids[..., 0], ids[..., 1:]

    def describe(self) -> tuple[str, str]:
        """(head, encoder layers) for ``attnlab list models``."""
        return type(self.head).__name__, f"{len(self.layers)} layers"

    def embeddings(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """ids (B, L) or (B, L, 1 + S) -> (token + n-gram (+ subword) + position embeddings, dropped out (B, L', D),
        padding (B, L')): the encoder's input. Texts are cut to ``max_len``; L' = L (+1 with "cls": the class
        token comes first)."""
        ids, pieces = self.split(ids[:, : self.max_len])
        pad = ids == PAD
        x = self.embed(ids)
        if pieces is not None:  # the mean of each token's n-gram embeddings; a token without any gets 0
            pieces = pieces.flatten(0, 1)  # (B·L, S)
            present = (pieces != 0).to(x.dtype)
            share = present / present.sum(-1, keepdim=True).clamp(min=1)
            x = x + self.subword(pieces, per_sample_weights=share).view_as(x)
        if self.bigram is not None:
            for n in range(2, self.ngram_order + 1):
                x = x + self.bigram(self.ngram_ids(ids, n))
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
            pad = torch.cat([pad.new_zeros(pad.shape[0], 1), pad], dim=1)
        return self.drop(x + self.pos[:, : x.shape[1]]), pad

    def features(self, ids: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor, list]:
        """ids (B, L) or (B, L, 1 + S) -> (token features (B, L', D), padding (B, L'), per-layer weights
        (B, heads, L', L') or None each); L' = L (+1 with "cls": the class token comes first)."""
        x, pad = self.embeddings(ids)
        weights = []
        for layer in self.layers:
            x, w = layer(x, pad, need_weights)
            weights.append(w)
        return self.norm(x), pad, weights

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, L) (or (B, L, 1 + S) with subwords) int64, 0 = padding -> class scores (B, K): logits, or capsule
        lengths for "capsule"."""
        h, pad, _ = self.features(ids)
        return self.head(h, pad)


@register_model("text_transformer")
def text_transformer(**kwargs) -> TextTransformer:
    """The text classifier; keyword arguments as ``TextTransformer`` (all have defaults: a task passes at least
    ``vocab_size`` and ``num_classes`` from its data)."""
    return TextTransformer(**kwargs)
