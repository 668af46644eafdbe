"""Evaluate a run folder's checkpoint on its task's test split: ``attnlab eval`` and ``attnlab compare`` share it."""

from __future__ import annotations

from torch.utils.data import DataLoader

from .distributed import DistContext
from .loop import evaluate
from .run_folder import LoadedRun

__all__ = ["evaluate_run"]


def evaluate_run(run: LoadedRun, *, workers: int = 0) -> dict:
    """The task's metrics (``test_*``) and details of a loaded run on its test split, with what was evaluated."""
    bundle = run.data()
    ctx = DistContext(device=next(run.model.parameters()).device)
    loader = DataLoader(bundle.test, run.task.eval_batch_size, num_workers=workers, collate_fn=bundle.collate_fn)
    precision = run.doc.get("plan", {}).get("precision")  # the arithmetic the run trained and tested in
    scalars, details = evaluate(run.model, loader, ctx, run.task, split="test", precision=precision)
    return {
        "checkpoint": str(run.file),
        "epoch": run.doc["epoch"],
        "task": run.config.task,
        "run": run.task.title(),
        "metrics": scalars,
        "details": details,
    }
