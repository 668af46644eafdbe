"""The text task's predict: the class of each ``--text`` and of each line of each file, with its score.

The score is what the head's output means: for the capsule head, the **length** of the predicted class's
capsule (in [0, 1); the lengths of a text's classes need not sum to 1, so it is no probability), for the
other heads the softmax **probability** of the predicted class. The printed line and the CSV column name it.

Several labels per text (a ``--multi-label`` run): every label whose score reaches the run's threshold (chosen on
validation), highest first, each with its score: the capsule's length, or the label's sigmoid **probability**. A
text may get none (no label is forced); its line then says so and names the highest-scoring label.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .tokens import Subwords, Vocabulary, encode

__all__ = ["format_prediction", "predict_texts", "read_inputs", "score_name"]


def score_name(head: str) -> str:
    """``length`` (capsule head) or ``probability`` (the others): the score's name in rows and CSV columns."""
    return "length" if head == "capsule" else "probability"


def read_inputs(texts: list[str], files: list[str]) -> list[tuple[str, str, str | None]]:
    """(name, text, error) for each ``--text`` and each non-empty line of each file (one text per line)."""
    items: list[tuple[str, str, str | None]] = [(t, t, None) for t in texts]
    for path in files:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            items.append((path, "", "no such file"))
            continue
        except UnicodeDecodeError:
            items.append((path, "", "not UTF-8"))
            continue
        items += [(f"{path}:{n}", line, None) for n, line in enumerate(lines, start=1) if line.strip()]
    return items


@torch.no_grad()
def predict_texts(
    model: nn.Module,
    items: list[tuple[str, str, str | None]],
    meta: dict,
    *,
    tokenizer: str,
    max_len: int,
    head: str,
    threshold: float | None = None,
) -> list[dict]:
    """Rows ``{"input", "label", score_name(head): score, "text"}``, or ``{"input", "error"}``; with a
    ``threshold`` (several labels per text) ``{"input", "labels": [(label, score), …], "best": (label, score),
    "score": score_name(head), "text"}``, the labels on, highest first."""
    vocab, classes, score = Vocabulary(meta["vocab"]), meta["classes"], score_name(head)
    subwords = Subwords.of(meta.get("subword_buckets", 0))  # one for every text: each word hashed once
    rows = []
    for name, text, error in items:
        if error or not text.strip():
            rows.append({"input": name, "error": f"{name}: {error or 'an empty text'}"})
            continue
        ids = encode([text], vocab, tokenizer, max_len, subwords)[0][None]
        scores = model(ids)[0].float()
        if threshold is not None:
            values = scores if head == "capsule" else scores.sigmoid()
            ranked = sorted(((classes[k], float(v)) for k, v in enumerate(values)), key=lambda lv: -lv[1])
            on = [(label, v) for label, v in ranked if v >= threshold]
            rows.append({"input": name, "labels": on, "best": ranked[0], "score": score, "text": text})
            continue
        values = scores if head == "capsule" else scores.softmax(0)
        k = int(values.argmax())
        rows.append({"input": name, "label": classes[k], score: float(values[k]), "text": text})
    return rows


def format_prediction(row: dict) -> str:
    """``pos length 0.912  这本书写得真好`` (the text cut to 40 characters); several labels per text:
    ``sports length 0.931, travel length 0.702  …``, or ``no label (highest: sports length 0.312)  …``."""
    text = row["text"] if len(row["text"]) <= 40 else row["text"][:39] + "…"
    if "labels" in row:
        name = row["score"]
        if not row["labels"]:
            label, v = row["best"]
            return f"no label (highest: {label} {name} {v:.3f})  {text}"
        return ", ".join(f"{label} {name} {v:.3f}" for label, v in row["labels"]) + f"  {text}"
    name = "length" if "length" in row else "probability"
    return f"{row['label']} {name} {row[name]:.3f}  {text}"
