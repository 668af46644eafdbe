"""A user's text files as spreadsheets, pandas and scrapers write them (``tasks/text/rows.py``): quoted cells with
line breaks, U+2028 inside a text, a byte-order mark, semicolons, CRLF, rows with a cell too many or too few,
JSON lines; and predict's text files, one text a line."""

import csv
import json

import pytest

from attnlab.tasks.text.data import read_table
from attnlab.tasks.text.predict import read_inputs
from attnlab.tasks.text.rows import read_rows

TEXTS = ["first line\nsecond line", "has a\u2028line separator\x85and a next-line", "I love it, really", "plain"]
LABELS = ["pos", "neg", "pos", "neg"]


def test_a_csv_written_by_the_csv_module_reads_back_cell_for_cell(tmp_path):
    path = tmp_path / "train.csv"
    with path.open("w", encoding="utf-8", newline="") as f:  # quotes what needs quoting; CRLF line ends
        csv.writer(f).writerows([["text", "label"], *zip(TEXTS, LABELS, strict=True)])
    assert read_table(path, "text", "label") == (TEXTS, LABELS)
    assert [n for n, _ in read_rows(path)] == [2, 4, 5, 6]  # the line each row starts on: the first spans two


def test_excels_byte_order_mark_and_semicolons(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes('\ufefftext;label\r\n"a; b";x\r\nc;y\r\n'.encode())
    assert read_table(path, "text", "label") == (["a; b", "c"], ["x", "y"])
    comma = tmp_path / "comma.csv"  # a header with a comma: commas, whatever the texts hold
    comma.write_text('text,label\n"a; b",x\n', encoding="utf-8")
    assert read_table(comma, "text", "label") == (["a; b"], ["x"])


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ("I love it, really,pos", r"row 3 has 3 cells where the header has 2 \(text, label\): a text holding ',' must"),
        ("cut short", r"row 3 has 1 cells where the header has 2 \(text, label\): the line is cut short"),
    ],
)
def test_a_row_of_another_width_is_refused_by_line_not_shifted_into_the_label(tmp_path, row, said):
    path = tmp_path / "train.csv"
    path.write_text(f"text,label\nfine,pos\n{row}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=said):
        read_table(path, "text", "label")


def test_tsv_and_json_lines_keep_what_splitlines_would_cut(tmp_path):
    tsv = tmp_path / "train.tsv"
    tsv.write_text(
        "text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(TEXTS[1:], LABELS[1:], strict=True)), encoding="utf-8"
    )
    assert read_table(tsv, "text", "label") == (TEXTS[1:], LABELS[1:])
    jsonl = tmp_path / "train.jsonl"
    lines = [json.dumps({"text": t, "label": y}, ensure_ascii=False) for t, y in zip(TEXTS, LABELS, strict=True)]
    jsonl.write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n", encoding="utf-8")
    assert read_table(jsonl, "text", "label") == (TEXTS, LABELS)
    assert [n for n, _ in read_rows(jsonl)] == [1, 2, 4, 5]  # the blank line skipped, still counted
    jsonl.write_text('{"text": "a", "label": "x"}\n["a", "x"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: expected a JSON object of named fields, got list"):
        read_rows(jsonl)


def test_predict_reads_a_text_a_line_without_the_byte_order_mark(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("\ufefffirst\r\nhas a\u2028separator\n\nlast".encode())
    got = read_inputs([], [str(path)])
    assert got == [
        (f"{path}:1", "first", None),
        (f"{path}:2", "has a\u2028separator", None),
        (f"{path}:4", "last", None),
    ]
