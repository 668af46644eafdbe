"""Texts to token ids: the tokenizers, the vocabulary, the tokenized splits and their padded batches.

Ids: ``PAD`` (0, the text model's padding id), ``UNK`` (1), then the training split's tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..._names import Registry
from ...models.text import PAD

__all__ = ["PAD", "UNK", "TOKENIZERS", "check_tokenizer", "Vocabulary", "TokenizedTexts", "collate_padded", "encode"]

UNK = 1  # the unknown token's id in every vocabulary (after PAD = 0)

TOKENIZERS: Registry[Callable[[str], list[str]]] = Registry("tokenizer", "attnlab train --task text --help")


@TOKENIZERS.register("char")
def char_tokens(text: str) -> list[str]:
    """Characters (whitespace dropped): every script, no tokenizer to install."""
    return [c for c in text if not c.isspace()]


@TOKENIZERS.register("words")
def word_tokens(text: str) -> list[str]:
    """Lower-cased words, runs of letters and digits (``\\w+``): scripts that put spaces between words."""
    return re.findall(r"\w+", text.lower())


AUTO = "auto"  # --tokenizer auto: chosen from the training texts (``choose_tokenizer``)
SPACELESS = 0.3  # from this share of CJK characters on, texts are tokenized by character


def _cjk(c: str) -> bool:
    """Kana and CJK ideographs: scripts written without spaces between words (not Hangul, which has them)."""
    return "\u3040" <= c <= "\u30ff" or "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff"


def choose_tokenizer(texts: list[str], sample: int = 2000) -> tuple[str, str]:
    """(tokenizer, why): characters for scripts written without spaces (Chinese, Japanese: a share of at least
    ``SPACELESS`` CJK characters among the non-space characters of up to ``sample`` texts), words otherwise."""
    chars = [c for t in texts[:sample] for c in t if not c.isspace()]
    share = sum(map(_cjk, chars)) / max(1, len(chars))
    name = "char" if share >= SPACELESS else "words"
    return name, f"{100 * share:.0f} % of the training texts' characters are CJK (char from {100 * SPACELESS:.0f} %)"


def check_tokenizer(name: str) -> None:
    """Refuse an unknown ``--tokenizer`` now, with suggestions, and a missing jieba before the data are read."""
    if name != AUTO:
        TOKENIZERS.get(name)
    if name == "jieba":
        TOKENIZERS.get("jieba")("检查")


@TOKENIZERS.register("jieba")
def jieba_tokens(text: str) -> list[str]:
    """Chinese words, by jieba (``pip install jieba``)."""
    try:
        import jieba
    except ImportError:
        raise ValueError("--tokenizer jieba: the jieba package is not installed; pip install jieba") from None
    jieba.setLogLevel(60)  # no "Building prefix dict" chatter
    return [w for w in jieba.lcut(text) if not w.isspace()]


@dataclass
class Vocabulary:
    """Tokens by id: 0 padding, 1 unknown, then the training split's tokens seen at least ``min_count`` times,
    most frequent first (ties in first-seen order)."""

    tokens: list[str]

    @classmethod
    def build(cls, token_lists: list[list[str]], min_count: int = 2) -> Vocabulary:
        counts = Counter(t for tokens in token_lists for t in tokens)
        kept = [t for t, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= min_count]
        return cls(["<pad>", "<unk>", *kept])

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: list[str], max_len: int) -> list[int]:
        return [self.index.get(t, UNK) for t in tokens[:max_len]]


def encode(texts: list[str], vocab: Vocabulary, tokenizer: str, max_len: int) -> list[list[int]]:
    """Each text's ids: tokenized by the named tokenizer, cut to ``max_len`` tokens."""
    tokenize = TOKENIZERS.get(tokenizer)
    return [vocab.encode(tokenize(t), max_len) for t in texts]


class TokenizedTexts(Dataset):
    """Items ``(token ids (n,) int64, label)``; empty texts become one unknown token (never a 0-length row).

    ``token_dropout`` > 0 (training): each token is replaced by the unknown token with that probability, a
    fresh draw per item from torch's generator (``EpochSeeded`` makes it a function of seed, epoch, index)."""

    def __init__(self, ids: list[list[int]], labels: list[int], token_dropout: float = 0.0) -> None:
        self.ids = [torch.tensor(x or [UNK], dtype=torch.int64) for x in ids]
        self.labels, self.token_dropout = labels, token_dropout

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = self.ids[i]
        if self.token_dropout > 0:
            x = torch.where(torch.rand(x.shape) < self.token_dropout, torch.full_like(x, UNK), x)
        return x, self.labels[i]


def collate_padded(batch: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    """Texts padded (with ``PAD``) to the longest in the batch: ((B, L) int64, (B,) int64)."""
    longest = max(len(x) for x, _ in batch)
    ids = torch.full((len(batch), longest), PAD, dtype=torch.int64)
    for row, (x, _) in enumerate(batch):
        ids[row, : len(x)] = x
    return ids, torch.tensor([y for _, y in batch], dtype=torch.int64)
