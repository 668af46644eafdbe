"""Progress of long work: a rich bar on a terminal, one plain line per epoch otherwise (CI logs)."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import Progress

from ..report.progress_bar import started_bar
from ..report.tables import rate_key

__all__ = ["EpochProgress", "format_record"]

# what the epoch line leaves out (shown differently or not at all)
_HIDDEN = ("epoch", "lr", "seconds")


def format_record(record: dict, epochs: int, unit: str) -> str:
    """``epoch 3/15  train_loss 0.5174  val_acc 0.9830 …  lr 0.0562  814 images/s  4.9 s``."""
    rate = rate_key(unit)
    metrics = "  ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in (*_HIDDEN, rate) and isinstance(v, float))
    return (
        f"epoch {record['epoch']}/{epochs}  {metrics}  lr {record['lr']:.3g}  "
        f"{record[rate]:.0f} {unit}/s  {record['seconds']:.1f} s"
    )


class EpochProgress:
    """``with EpochProgress(epoch, epochs, total, unit) as p: p.update(n, loss)``; silent unless enabled."""

    def __init__(
        self,
        epoch: int,
        epochs: int,
        total: int,
        unit: str = "samples",
        *,
        enabled: bool = True,
        console: Console | None = None,
    ):
        self.epoch, self.epochs, self.total, self.unit, self.enabled = epoch, epochs, total, unit, enabled
        self.console = console or Console(file=sys.stderr)
        self.bar: Progress | None = None
        self.seen, self.loss_sum, self.start = 0, 0.0, time.perf_counter()

    def __enter__(self) -> EpochProgress:
        if self.enabled and self.console.is_terminal:
            self.bar, self.task = started_bar(f"epoch {self.epoch}/{self.epochs}", self.total, self.console)
        return self

    def update(self, n: int, loss: float) -> None:
        self.seen += n
        self.loss_sum += loss * n
        if self.bar is not None:
            rate = self.seen / max(time.perf_counter() - self.start, 1e-9)
            stats = f"loss {self.loss_sum / self.seen:.4f}  {rate:.0f} {self.unit}/s"
            self.bar.update(self.task, completed=self.seen, stats=stats)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def line(self, record: dict) -> None:
        """The epoch's one-line summary (always printed, terminal or not)."""
        if self.enabled:
            self.console.print(format_record(record, self.epochs, self.unit), highlight=False, soft_wrap=True)
