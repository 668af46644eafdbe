"""Registries by name, and errors for unknown names with the closest valid names suggested."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


def unknown_name(kind: str, name: object, choices: Iterable[str], see: str) -> ValueError:
    """ValueError("attention: unknown name 'cbma'; did you mean 'cbam'? see all with `...`")."""
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return ValueError(f"{kind}: unknown name {name!r}; {hint}see all with `{see}`")


def _qualname(item: object) -> str:
    return getattr(item, "__qualname__", type(item).__name__)


class Registry(Generic[T]):
    """Items by unique name; a lookup of an unknown name raises ``unknown_name``'s error.

    ``describe`` names an item in the error for a name registered twice (default: its ``__qualname__``).
    """

    def __init__(self, kind: str, see: str, describe: Callable[[T], str] = _qualname) -> None:
        self.kind, self.see, self.describe = kind, see, describe
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            held = self.describe(self._items[name])
            raise ValueError(f"{self.kind} {name!r} is already registered (by {held})")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of ``add``."""
        return lambda item: self.add(name, item)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise unknown_name(self.kind, name, self._items, self.see) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self):
        return self._items.items()
