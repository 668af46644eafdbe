"""Texts to token ids: the tokenizers, the vocabulary, each word's subwords, the tokenized splits and their
padded batches.

Ids: ``PAD`` (0, the text model's padding id), ``UNK`` (1), then the training split's tokens. A text is a row
of ids (L,), or with subwords (words tokenizer, ``--subword-buckets``) a table (L, 1 + S): column 0 the token's
id, the others the buckets of its character n-grams (0: none), so that a word the vocabulary does not hold
(unseen in training, or rarer than ``--min-count``) is still read through its pieces (Bojanowski et al.,
"Enriching Word Vectors with Subword Information", TACL 2017: fastText's subwords).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..._names import Registry
from ...models.text import PAD

__all__ = [
    "PAD",
    "UNK",
    "TOKENIZERS",
    "check_tokenizer",
    "Vocabulary",
    "Subwords",
    "text_ids",
    "pad_rows",
    "TokenizedTexts",
    "collate_padded",
    "encode",
]

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


SUBWORD_ORDERS = (3, 4, 5)  # fastText's character n-grams are 3-6; 3-5 as the baseline's char_wb n-grams


MAX_SUBWORDS = 32  # per word (a 10-letter word has 27 of orders 3-5): the n-grams of longer words' tails drop


class Subwords:
    """A word's character n-grams (of ``<word>``, fastText's boundary marks), hashed into 1 … buckets − 1 by
    CRC-32 (stable across processes, unlike ``hash``), in order of position, at most ``MAX_SUBWORDS``."""

    def __init__(self, buckets: int) -> None:
        self.buckets, self.cache = buckets, {}

    @classmethod
    def of(cls, buckets: int) -> Subwords | None:
        """The subwords of ``buckets`` buckets, None for 0 (a run without them)."""
        return cls(buckets) if buckets else None

    def __call__(self, word: str) -> list[int]:
        ids = self.cache.get(word)
        if ids is None:
            s = f"<{word}>"
            grams = [s[i : i + n] for i in range(len(s)) for n in SUBWORD_ORDERS if i + n <= len(s)]
            ids = [zlib.crc32(g.encode()) % (self.buckets - 1) + 1 for g in grams[:MAX_SUBWORDS]]
            self.cache[word] = ids
        return ids


def text_ids(tokens: list[str], vocab: Vocabulary, max_len: int, subwords: Subwords | None = None) -> Tensor:
    """One text's ids cut to ``max_len`` tokens: (n,) int64, or (n, 1 + S) with ``subwords`` (S: the most
    n-grams of its words; 0 pads); an empty text is one unknown token (never a 0-length row)."""
    tokens = tokens[:max_len]
    ids = torch.tensor(vocab.encode(tokens, max_len) or [UNK], dtype=torch.int64)
    if subwords is None:
        return ids
    pieces = [subwords(t) for t in tokens] or [[]]
    table = torch.zeros(len(ids), 1 + max(map(len, pieces)), dtype=torch.int64)
    table[:, 0] = ids
    for row, p in enumerate(pieces):
        table[row, 1 : 1 + len(p)] = torch.tensor(p, dtype=torch.int64)
    return table


def encode(
    texts: list[str], vocab: Vocabulary, tokenizer: str, max_len: int, subwords: Subwords | None = None
) -> list[Tensor]:
    """Each text's ids (``text_ids``): tokenized by the named tokenizer, cut to ``max_len`` tokens, with each
    word's ``subwords`` where given (one ``Subwords`` for every split: its cache hashes each word once)."""
    tokenize = TOKENIZERS.get(tokenizer)
    return [text_ids(tokenize(t), vocab, max_len, subwords) for t in texts]


class TokenizedTexts(Dataset):
    """Items ``(token ids (n,) or (n, 1 + S) int64, label)`` (``text_ids``); the label a class index, or a
    multi-hot row (K,) with several labels per text.

    ``token_dropout`` > 0 (training): each token is replaced by the unknown token with that probability, a
    fresh draw per item from torch's generator (``EpochSeeded`` makes it a function of seed, epoch, index); a
    dropped word keeps its subwords, as an unseen word has them at test time."""

    def __init__(self, ids: list[Tensor], labels: list, token_dropout: float = 0.0) -> None:
        self.ids, self.labels, self.token_dropout = ids, labels, token_dropout

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int | Tensor]:
        x = self.ids[i]
        if self.token_dropout > 0:
            x = x.clone()
            tok = x[:, 0] if x.dim() == 2 else x
            tok[torch.rand(tok.shape) < self.token_dropout] = UNK
        return x, self.labels[i]


def pad_rows(rows: list[Tensor], value: int) -> Tensor:
    """Texts' ids (n_i,) or (n_i, 1 + S_i) padded with ``value`` to (B, L) or (B, L, 1 + S), the longest of
    each axis; a subword table's padding past its own columns is 0 (no n-gram) whatever ``value``."""
    longest = max(len(x) for x in rows)
    if rows[0].dim() == 1:
        out = torch.full((len(rows), longest), value, dtype=torch.int64)
        for row, x in enumerate(rows):
            out[row, : len(x)] = x
        return out
    out = torch.zeros(len(rows), longest, max(x.shape[1] for x in rows), dtype=torch.int64)
    out[:, :, 0] = value
    for row, x in enumerate(rows):
        out[row, : len(x), : x.shape[1]] = x
    return out


def collate_padded(batch: list[tuple[Tensor, int | Tensor]]) -> tuple[Tensor, Tensor]:
    """Texts padded (with ``PAD``) to the longest in the batch: ((B, L) or (B, L, 1 + S) int64, (B,) int64), or
    with several labels per text (multi-hot rows (K,)) the targets stacked, (B, K) float32."""
    ys = [y for _, y in batch]
    target = torch.stack(ys) if isinstance(ys[0], Tensor) else torch.tensor(ys, dtype=torch.int64)
    return pad_rows([x for x, _ in batch], PAD), target
