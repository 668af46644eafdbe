"""Which of a user's folders (or files) is training, validation and test: one rule for every folder data set.

A data set folder holds ``train`` and one or two held-out splits, named as users name them: ``val`` (or
``valid``, ``validation``) and ``test``. With both, ``val`` validates and ``test`` is scored once at the end.
With one of them, it is the test split and validation is carved from ``train`` (``Task.split_validation``).
The note says which, so a user knows what the reported figure was measured on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VAL_NAMES", "SplitPaths", "a_folder", "find_splits"]

VAL_NAMES = ("val", "valid", "validation")


@dataclass(frozen=True)
class SplitPaths:
    train: Path
    val: Path | None  # None: carved from train
    test: Path
    note: str


def a_folder(root: Path, name: str) -> Path | None:
    """``root/name`` where it is a folder: ``find_splits``'s finder for folder data sets."""
    return root / name if (root / name).is_dir() else None


def find_splits(root: Path, find: Callable[[Path, str], Path | None], expected: str) -> SplitPaths:
    """The splits under ``root``; ``find(root, name)`` is the split called ``name`` or None; ``expected`` (e.g.
    "train/<class>/… and val/<class>/…") goes into the error when ``train`` or every held-out split is missing."""
    train = find(root, "train")
    val = next((p for p in (find(root, n) for n in VAL_NAMES) if p is not None), None)
    test = find(root, "test")
    if train is None or (val is None and test is None):
        raise FileNotFoundError(
            f"--data-dir: expected {expected} in {root} (a held-out split named val, valid, validation or test)"
        )
    if val is not None and test is not None:
        note = f"{val.name} is the validation split, {test.name} the test split"
        return SplitPaths(train, val, test, note)
    held = val if val is not None else test
    note = f"{held.name} is the test split (scored once, at the end); validation is carved from {train.name}"
    return SplitPaths(train, None, held, note)
