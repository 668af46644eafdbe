"""The one look of every progress bar (rich): a label, the bar, done / total, the work's own figures, the time
left. Training's epochs (``engine.progress``) and a slide's blocks (``tasks.segment.slide``) show it."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["started_bar"]


def started_bar(label: str, total: int, console: Console) -> tuple[Progress, object]:
    """(a started bar that clears itself when stopped, its task); ``progress.update(task, …, stats=…)`` fills the
    figures column."""
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    bar.start()
    return bar, bar.add_task(label, total=total, stats="")
