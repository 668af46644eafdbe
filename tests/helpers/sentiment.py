"""Tiny Chinese "reviews" whose sentiment single characters carry: the text task's test data, written as a
user's ``train.jsonl`` and ``val.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GOOD, BAD, FILLER = list("好棒喜欢赞美妙"), list("差烂坏糟失望"), list("的了书这本")


def write_sentiment(
    root: Path, n: int, train: int, *, text_col: str = "text", label_col: str = "label", flip: float = 0.0
) -> None:
    """``n`` texts of 4 sentiment characters and 3 fillers, labels ``low``/``high`` alternating; a fraction
    ``flip`` of the labels turned over at random (noisy labels). The first ``train`` go to train.jsonl, the rest
    to val.jsonl. Seeded: the same call writes the same files."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        label = i % 2
        words = "".join(rng.choice(GOOD if label else BAD, 4)) + "".join(rng.choice(FILLER, 3))
        if flip:
            label = 1 - label if rng.random() < flip else label
        rows.append(json.dumps({text_col: words, label_col: ["low", "high"][label]}, ensure_ascii=False))
    (root / "train.jsonl").write_text("\n".join(rows[:train]) + "\n", encoding="utf-8")
    (root / "val.jsonl").write_text("\n".join(rows[train:]) + "\n", encoding="utf-8")
