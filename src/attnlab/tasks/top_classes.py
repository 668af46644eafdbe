"""What the classification tasks (images, clips) share on the command line: ``predict --top``, the most probable
classes of each input printed as a line or written as CSV fields, and eval's accuracy of each class."""

from __future__ import annotations

import argparse
from typing import Any

from torch import Tensor

from .base import TaskCLI

__all__ = ["TopClassesCLI", "add_top_argument", "top_classes"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {value}")
    return value


def add_top_argument(parser: Any, what: str) -> None:
    """``--top N`` (default 3): classes shown per input."""
    parser.add_argument("--top", type=_positive, default=3, help=f"classes shown per {what} (default 3)")


def top_classes(logits: Tensor, classes: list[str], top: int) -> list[tuple[str, float]]:
    """One input's logits (K,) -> its ``top`` most probable (class, probability), best first."""
    p, idx = logits.float().softmax(0).topk(min(top, len(classes)))
    return [(classes[i], float(q)) for q, i in zip(p, idx.tolist(), strict=True)]


class TopClassesCLI(TaskCLI):
    """Prediction rows ``{"input", "top": [(class, probability), …]}`` and per-class accuracy in eval."""

    def format_prediction(self, row: dict) -> str:
        return f"{row['input']}: " + ", ".join(f"{c} {p:.3f}" for c, p in row["top"])

    def prediction_fields(self, row: dict) -> dict:
        fields = {"input": row["input"]}
        for rank, (c, p) in enumerate(row["top"], start=1):
            fields[f"class{rank}"], fields[f"prob{rank}"] = c, f"{p:.6f}"
        return fields

    def eval_details(self, details: dict) -> list[tuple[str, dict[str, str]]]:
        """Per-class accuracy as a table for ``attnlab eval``."""
        classes = self.task.meta["classes"]
        rows = {str(c): f"{a:.4f}" for c, a in zip(classes, details["per_class_acc"], strict=True)}
        return [("accuracy per class", rows)]
