"""The text task's predict: the class of each ``--text`` and of each line of each file, with what it is worth.

The class is the head's highest score. The numbers beside it, named in the printed line and the CSV columns:

- **probability**: the predicted class's calibrated probability, softmax(scores / T)_k, where the scores are the
  head's outputs (the capsule head's lengths, the other heads' logits) and T the temperature fitted after
  training on the validation split (``tasks.calibration``, temperature scaling, Guo et al. 2017), the T that
  minimizes the validation NLL, so that texts given p are right about a fraction p of the time (how far from it,
  the run's ECE says). The classes' probabilities sum to 1 (the row's ``probabilities``, class by class);
- **length** (capsule head): the predicted class's capsule length, in [0, 1), as the network outputs it; the
  lengths of a text's classes need not sum to 1, so it is no probability.

A run made before calibration (no ``calibration`` in its meta's ``fitted``) predicts as it did then: the capsule head's
length alone, the other heads' uncalibrated softmax probability (T = 1).

Several labels per text (a ``--multi-label`` run): every label whose score reaches the run's threshold (chosen on
validation), highest first, each with its score: the capsule's length, or the label's sigmoid **probability**. A
text may get none (no label is forced); its line then says so and names the highest-scoring label.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..calibration import calibrated_probabilities
from .tokens import Subwords, Vocabulary, encode

__all__ = ["calibration_of", "format_prediction", "predict_texts", "read_inputs", "score_columns", "score_name"]


def score_name(head: str) -> str:
    """The one score of a run without calibration: ``length`` (capsule head) or ``probability`` (the others)."""
    return "length" if head == "capsule" else "probability"


def calibration_of(meta: dict) -> dict | None:
    """The temperature scaling a run fitted after training (``meta["fitted"]["calibration"]``, summary.json's
    ``fitted`` too), None for a run made before calibration or with several labels per text."""
    return meta.get("fitted", {}).get("calibration")


def score_columns(head: str, calibrated: bool) -> tuple[str, ...]:
    """The numbers of a row, in its CSV's column order: with calibration ``probability``, after the capsule head's
    ``length`` (the column its runs had before); without, ``score_name(head)`` alone."""
    if not calibrated:
        return (score_name(head),)
    return ("length", "probability") if head == "capsule" else ("probability",)


def read_inputs(texts: list[str], files: list[str]) -> list[tuple[str, str, str | None]]:
    """(name, text, error) for each ``--text`` and each non-empty line of each file (one text per line)."""
    items: list[tuple[str, str, str | None]] = [(t, t, None) for t in texts]
    for path in files:
        try:
            # a byte-order mark is no text; only line breaks end a line (U+2028 inside a text does not: splitlines)
            lines = Path(path).read_text(encoding="utf-8-sig").split("\n")
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
    """Rows ``{"input", "label", "length" (capsule head), "probability", "probabilities", "text"}`` with the run's
    calibration (``calibration_of(meta)["temperature"]``; ``probabilities``: each class's, by name), without it
    ``{"input", "label", score_name(head): score, "text"}``; ``{"input", "error"}`` for a bad input. With a
    ``threshold`` (several labels per text) ``{"input", "labels": [(label, score), …], "best": (label, score),
    "score": score_name(head), "text"}``, the labels on, highest first."""
    vocab, classes, score = Vocabulary(meta["vocab"]), meta["classes"], score_name(head)
    calibration = calibration_of(meta)
    subwords = Subwords.of(meta.get("subword_buckets", 0))  # one for every text: each word hashed once
    rows = []
    for name, text, error in items:
        if error or not text.strip():
            rows.append({"input": name, "error": f"{name}: {error or 'an empty text'}"})
            continue
        ids = encode([text], vocab, tokenizer, max_len, subwords)[0][None]  # (1, L) or (1, L, 1 + S)
        scores = model(ids)[0].float()  # (K,): capsule lengths or logits
        if threshold is not None:  # several labels: each class's own score (a length, or a sigmoid)
            values = scores if head == "capsule" else scores.sigmoid()
            ranked = sorted(((classes[k], float(v)) for k, v in enumerate(values)), key=lambda lv: -lv[1])
            on = [(label, v) for label, v in ranked if v >= threshold]
            rows.append({"input": name, "labels": on, "best": ranked[0], "score": score, "text": text})
            continue
        k = int(scores.argmax())  # the head's class, whatever T (a temperature keeps the order)
        if calibration is None:  # a run from before calibration: as it predicted then
            values = scores if head == "capsule" else scores.softmax(0)
            rows.append({"input": name, "label": classes[k], score: float(values[k]), "text": text})
            continue
        probs = calibrated_probabilities(scores, calibration["temperature"])  # (K,) float64
        row = {"input": name, "label": classes[k]} | ({"length": float(scores[k])} if head == "capsule" else {})
        row |= {"probability": float(probs[k]), "probabilities": dict(zip(classes, probs.tolist(), strict=True))}
        rows.append(row | {"text": text})
    return rows


def format_prediction(row: dict) -> str:
    """``pos probability 0.874 length 0.912  这本书写得真好`` (the text cut to 40 characters): each number the row
    has (a run without calibration: ``pos length 0.912  …`` or ``pos probability 0.874  …``); several labels per
    text: ``sports length 0.931, travel length 0.702  …``, or ``no label (highest: sports length 0.312)  …``."""
    text = row["text"] if len(row["text"]) <= 40 else row["text"][:39] + "…"
    if "labels" in row:
        name = row["score"]
        if not row["labels"]:
            label, v = row["best"]
            return f"no label (highest: {label} {name} {v:.3f})  {text}"
        return ", ".join(f"{label} {name} {v:.3f}" for label, v in row["labels"]) + f"  {text}"
    names = [n for n in ("probability", "length") if n in row]
    return " ".join([row["label"], *(f"{n} {row[n]:.3f}" for n in names)]) + f"  {text}"
