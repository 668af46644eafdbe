"""When a run writes its checkpoints: ``last.*`` (what ``--resume`` continues from) and ``best.*`` (the weights
validation chose), each atomically, at most every ``--checkpoint-every`` seconds.

A checkpoint holds the weights, the optimizer's moments and the run's record, and each write is flushed to disk:
a text run of three networks with 65,536-bucket tables writes 470 MB for ``last.*``, which after every 2-second
epoch of a few hundred texts took longer than the training (docs850: 92 epochs). So after an epoch ``last.*`` is
written when the interval has passed since this process last wrote it, after its first epoch, and after the
run's final epoch (the recipe's last, or an early stop); an improvement on validation is kept in memory and
written to ``best.*`` just before that ``last.*``, so the two on disk always belong together: the best of the
epochs ``last.*`` has finished. A killed run resumes from the last write and loses at most the interval's
epochs, which it trains again to the same bits (epochs reseed from (seed, epoch)). ``metrics.jsonl`` (a line
an epoch, small) is written every epoch. ``0`` writes both after every epoch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from torch import Tensor, nn

from .checkpoint import atomic_write_text, save_checkpoint
from .run_folder import BEST, LAST, METRICS

__all__ = ["CHECKPOINT_EVERY", "CheckpointWriter"]

CHECKPOINT_EVERY = 30.0  # seconds


class _Snapshot:
    """A module's tensors as they were when it was taken (``save_checkpoint`` reads a module's state_dict)."""

    def __init__(self, module: nn.Module) -> None:
        self._state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def state_dict(self) -> dict[str, Tensor]:
        return self._state


class CheckpointWriter:
    """``epoch_done`` after every finished epoch; ``saved_epoch``: the epoch ``last.*`` on disk holds."""

    def __init__(self, out: Path, every: float, saved_epoch: int, rng: Callable[[], dict]) -> None:
        self.out, self.every, self.saved_epoch, self._rng = Path(out), every, saved_epoch, rng
        self._saved_at: float | None = None  # when this process last wrote last.* (None: not yet)
        self._best: tuple[_Snapshot, dict] | None = None  # an improvement best.* does not hold yet

    def due(self, final: bool) -> bool:
        return final or self._saved_at is None or time.perf_counter() - self._saved_at >= self.every

    def epoch_done(
        self,
        meta: dict,
        model: nn.Module,
        judged: nn.Module,
        *,
        improved: bool,
        final: bool,
        optimizer,
        scheduler,
        extra: dict[str, Tensor] | None,
    ) -> None:
        """After an epoch (``meta``: the checkpoint's document, its ``history`` every finished epoch's record):
        ``judged`` (the weights validation scored) held when ``improved``; both files written when due
        (``final``: the run trains no further epoch)."""
        history = meta["history"]
        if improved:  # its own copy of the history, which later epochs extend
            self._best = (_Snapshot(judged), {**meta, "history": list(history)})
        atomic_write_text(self.out / METRICS, "".join(json.dumps(r) + "\n" for r in history))
        if not self.due(final):
            return
        if self._best is not None:
            save_checkpoint(self.out / BEST, *self._best)
            self._best = None
        rng = self._rng()
        save_checkpoint(self.out / LAST, model, meta, optimizer=optimizer, scheduler=scheduler, rng=rng, extra=extra)
        self.saved_epoch, self._saved_at = meta["epoch"], time.perf_counter()
