"""The run folder, in one place: its file names, preparing or refusing it, and loading a run's model back.

config.json            the resolved arguments (task, recipe, task options)
metrics.jsonl          one line per epoch
last.safetensors/.json every epoch (with optimizer, scheduler and RNG state: exact resume)
best.safetensors/.json on improvement of the task's monitored metric
summary.json           at the end: final_* / best_* of the monitored metric, params, GFLOPs, wall time
curves.png             the metrics per epoch
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..tasks import Task, TaskCLI, TaskData
from .checkpoint import CheckpointError, atomic_write_text, load_checkpoint, load_checkpoint_document, model_state
from .config import TrainConfig
from .distributed import resolve_device

__all__ = [
    "CONFIG",
    "METRICS",
    "SUMMARY",
    "CURVES",
    "LAST",
    "BEST",
    "RUN_FILES",
    "RUNS",
    "RunError",
    "LoadedRun",
    "checkpoint_file",
    "load_model_weights",
    "load_run",
    "prepare_run_dir",
]

CONFIG, METRICS, SUMMARY, CURVES = "config.json", "metrics.jsonl", "summary.json", "curves.png"
LAST, BEST = "last.safetensors", "best.safetensors"
RUN_FILES = (CONFIG, METRICS, SUMMARY, CURVES, LAST, "last.json", BEST, "best.json")


class RunError(ValueError):
    """A run that cannot start or go on, with what to do about it."""


def prepare_run_dir(out: Path, config: TrainConfig, *, resume: bool, overwrite: bool) -> None:
    """Refuse to mix runs: an ``out`` holding another run needs ``resume`` (same config) or ``overwrite``."""
    saved = out / CONFIG
    if resume:
        if not (out / LAST).is_file():
            raise RunError(f"--resume: nothing to resume in {out} (no {LAST}); start without --resume")
        before = TrainConfig.from_dict(json.loads(saved.read_text())).to_dict() if saved.is_file() else {}
        diff = {k: (before.get(k), v) for k, v in config.to_dict().items() if before.get(k) != v}
        if diff:
            raise RunError(
                f"--resume: the arguments differ from the run in {out}: "
                + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in diff.items())
            )
        for stale in out.glob(".*.tmp"):  # a write cut short by a kill: the file it was replacing is whole
            stale.unlink()
        return
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RunError(f"--out: {out} already holds a run; pass --resume to continue it or --overwrite to replace it")
    if overwrite and out.exists():
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved, json.dumps(config.to_dict(), indent=2) + "\n")


def checkpoint_file(path: str | Path) -> Path:
    """A run folder -> its best.safetensors (else last.safetensors); a .safetensors file as it is."""
    path = Path(path)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"--checkpoint: {path} holds no {BEST} or {LAST}")
    if not path.is_file():
        raise CheckpointError(f"--checkpoint: no run folder or checkpoint at {path}")
    return path


def load_model_weights(model: nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """Strict load with a message naming the keys that differ (another model or attention)."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"checkpoint: {where} is from another model or attention: missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}, other shapes {shapes[:4]}"
        )
    model.load_state_dict(state)


class _Runs:
    """Other run folders as a task reads them (``tasks.RunSource``): the engine owns the layout."""

    def config(self, path: str | Path) -> dict:
        path = Path(path)
        file = path / CONFIG if path.is_dir() else path.parent / CONFIG
        if not path.exists():
            raise FileNotFoundError(f"{path}: no attnlab run folder (nothing there)")
        if not file.is_file():
            raise FileNotFoundError(f"{path}: no attnlab run folder (no {file})")
        return json.loads(file.read_text())

    def meta(self, path: str | Path) -> dict:
        """The data meta its checkpoint saved (best, else last); {} for a run without one yet."""
        try:
            doc = load_checkpoint_document(checkpoint_file(path))
        except CheckpointError:
            return {}
        return doc.get("data_meta") or {}

    def weights(self, path: str | Path) -> dict[str, torch.Tensor]:
        tensors, _ = load_checkpoint(checkpoint_file(path))
        return model_state(tensors)


RUNS = _Runs()


@dataclass
class LoadedRun:
    """A trained run back from its folder: the model (eval mode), its task (bound to the run's options and data
    meta), config, checkpoint."""

    model: nn.Module
    task: Task
    config: TrainConfig
    doc: dict
    file: Path
    _data: TaskData | None = field(default=None, repr=False)

    @property
    def meta(self) -> dict:
        return self.task.meta

    @property
    def cli(self) -> TaskCLI:
        """The task's command-line face (predict, visualize, eval's tables)."""
        return self.task.CLI(self.task)

    def data(self) -> TaskData:
        """The run's data (built on first use: predict and export never need it)."""
        if self._data is None:
            self._data = self.task.build_data()
        return self._data


def load_run(path: str | Path, *, overrides: dict | None = None, device: str = "cpu") -> LoadedRun:
    """A run folder (or checkpoint file) -> ``LoadedRun``. ``overrides`` replace options of the run (``data``,
    ``data_dir``: evaluate on another data set); the model is rebuilt from them and must take the weights."""
    file = checkpoint_file(path)
    tensors, doc = load_checkpoint(file)
    config = TrainConfig.from_dict(doc["config"])
    if overrides:
        config = config.replace(**overrides)
    task, built = config.new_task(meta=doc.get("data_meta"), runs=RUNS), None
    if doc.get("data_meta") is None or overrides:  # runs from before data_meta was saved, or another data set
        built = task.build_data()
        task.meta = built.meta
    torch.manual_seed(config.recipe.seed)
    model = task.build_model()
    load_model_weights(model, model_state(tensors), file)
    model = model.to(resolve_device(device)).eval()
    return LoadedRun(model, task, config, doc, file, built)
