"""Progress of long work: a rich bar on a terminal, one plain line per epoch otherwise (CI logs)."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["EpochProgress"]


class EpochProgress:
    """``with EpochProgress(epoch, epochs, total_images) as p: p.update(n, loss, acc)``; silent unless enabled."""

    def __init__(self, epoch: int, epochs: int, total: int, *, enabled: bool = True, console: Console | None = None):
        self.epoch, self.epochs, self.total, self.enabled = epoch, epochs, total, enabled
        self.console = console or Console(file=sys.stderr)
        self.bar: Progress | None = None
        self.seen, self.loss_sum, self.correct, self.start = 0, 0.0, 0.0, time.perf_counter()

    def __enter__(self) -> EpochProgress:
        if self.enabled and self.console.is_terminal:
            self.bar = Progress(
                TextColumn(f"epoch {self.epoch}/{self.epochs}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.total, stats="")
        return self

    def update(self, n: int, loss: float, acc: float) -> None:
        self.seen += n
        self.loss_sum += loss * n
        self.correct += acc * n
        if self.bar is not None:
            rate = self.seen / max(time.perf_counter() - self.start, 1e-9)
            stats = f"loss {self.loss_sum / self.seen:.4f}  acc {self.correct / self.seen:.4f}  {rate:.0f} img/s"
            self.bar.update(self.task, completed=self.seen, stats=stats)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def line(self, record: dict) -> None:
        """The epoch's one-line summary (always printed, terminal or not)."""
        if self.enabled:
            self.console.print(
                f"epoch {record['epoch']}/{self.epochs}  train loss {record['train_loss']:.4f} "
                f"acc {record['train_acc']:.4f}  val loss {record['val_loss']:.4f} acc {record['val_acc']:.4f}  "
                f"lr {record['lr']:.3g}  {record['images_per_s']:.0f} img/s  {record['seconds']:.1f} s",
                highlight=False,
                soft_wrap=True,
            )
