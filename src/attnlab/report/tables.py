"""Rows of results as CSV text (comparison tables, predictions), and the name of the throughput column."""

from __future__ import annotations

import csv
import io
import json

__all__ = ["csv_text", "rate_key"]


def rate_key(unit: str) -> str:
    """The key of the training throughput in an epoch's record, the summary and a comparison's rows:
    ``images_per_s``."""
    return f"{unit}_per_s"


def csv_text(rows: list[dict]) -> str:
    """``rows`` (dicts with the same keys) as CSV with a header line; a nested value (dict, list) as its JSON."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()} for r in rows)
    return buf.getvalue()
