"""Errors for unknown registry names, with the closest valid names suggested."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def unknown_name(kind: str, name: object, choices: Iterable[str], see: str) -> ValueError:
    """ValueError("attention: unknown name 'cbma'; did you mean 'cbam'? see all with `...`")."""
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return ValueError(f"{kind}: unknown name {name!r}; {hint}see all with `{see}`")
