"""The rows of a user's text file (CSV, TSV or JSON lines), each with the line it starts on, read as the files
users have are written: by spreadsheets, pandas and scrapers.

- UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8" writes one); another encoding is refused naming
  the line and the byte.
- CSV and TSV through the ``csv`` module on the whole text (``newline=""``), so a quoted cell may hold line breaks
  and keeps them; only ``\\n`` (and ``\\r\\n``) end a line, so a cell holding U+2028, U+0085 or a form feed (web
  text does) is not cut in two, as ``str.splitlines`` would.
- The delimiter: a tab for ``.tsv``; for ``.csv`` a comma, or a semicolon where the header line has semicolons
  and no comma (what Excel writes where the decimal mark is a comma).
- A row with more cells than the header (an unquoted text holding the delimiter) or fewer (a cut line) is
  refused naming the file and its line: its cells would otherwise shift into the label column silently.
- JSON lines: one object a line, blank lines skipped.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

__all__ = ["read_rows"]


def _text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{path}: line {line} is not UTF-8 (byte {raw[e.start]:#04x}); save the file as UTF-8"
        ) from None


def _delimiter(path: Path, text: str) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    header = text.split("\n", 1)[0]
    return ";" if ";" in header and "," not in header else ","


def _json_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {n} is not JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}: line {n}: expected a JSON object of named fields, got {type(row).__name__}")
            rows.append((n, row))
    return rows


def _table_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    delimiter = _delimiter(path, text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header, rows, end = None, [], 0
    for cells in reader:
        start, end = end + 1, reader.line_num  # a quoted cell may span lines: the row starts after the last one
        if not cells:  # a blank line
            continue
        if header is None:
            header = cells
            continue
        if len(cells) != len(header):
            more = len(cells) > len(header)
            why = f"a text holding {delimiter!r} must be quoted" if more else "the line is cut short"
            raise ValueError(
                f"{path}: row {start} has {len(cells)} cells where the header has {len(header)} "
                f"({', '.join(header)}): {why}"
            )
        rows.append((start, dict(zip(header, cells, strict=True))))
    return rows


def read_rows(path: Path) -> list[tuple[int, dict]]:
    """(the line a row starts on, the row as a dict of its named cells) of each row of a ``.csv``, ``.tsv`` or
    ``.jsonl`` file, in order; a file that cannot be read as one is refused naming the line."""
    text = _text(path)
    return _json_rows(path, text) if path.suffix.lower() == ".jsonl" else _table_rows(path, text)
