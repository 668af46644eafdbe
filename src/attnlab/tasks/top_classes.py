"""What the classification tasks (images, clips) share in ``predict`` and ``eval``: the most probable classes of
each input, printed as a line or written as CSV fields, and the accuracy of each class."""

from __future__ import annotations

from typing import Any

from torch import Tensor

__all__ = ["TopClasses", "top_count", "top_classes"]


def top_count(args: Any) -> int:
    """``--top`` of the predict command (3 when absent), refused below 1."""
    top = getattr(args, "top", 3)
    if top < 1:
        raise ValueError(f"--top: expected a positive int, got {top}")
    return top


def top_classes(logits: Tensor, classes: list[str], top: int) -> list[tuple[str, float]]:
    """One input's logits (K,) -> its ``top`` most probable (class, probability), best first."""
    p, idx = logits.float().softmax(0).topk(min(top, len(classes)))
    return [(classes[i], float(q)) for q, i in zip(p, idx.tolist(), strict=True)]


class TopClasses:
    """Task mixin for prediction rows ``{"input", "top": [(class, probability), …]}`` and per-class accuracy."""

    def format_prediction(self, row: dict) -> str:
        return f"{row['input']}: " + ", ".join(f"{c} {p:.3f}" for c, p in row["top"])

    def prediction_fields(self, row: dict) -> dict:
        fields = {"input": row["input"]}
        for rank, (c, p) in enumerate(row["top"], start=1):
            fields[f"class{rank}"], fields[f"prob{rank}"] = c, f"{p:.6f}"
        return fields

    def eval_details(self, details: dict, meta: dict) -> list[tuple[str, dict[str, str]]]:
        """Per-class accuracy as a table for ``attnlab eval``."""
        rows = {str(c): f"{a:.4f}" for c, a in zip(meta["classes"], details["per_class_acc"], strict=True)}
        return [("accuracy per class", rows)]
