"""Rows of results as CSV text (comparison tables, predictions)."""

from __future__ import annotations

import csv
import io

__all__ = ["csv_text"]


def csv_text(rows: list[dict]) -> str:
    """``rows`` (dicts with the same keys) as CSV with a header line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
