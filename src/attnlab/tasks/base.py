"""The Task seam: what a task (classification, segmentation, …) tells the engine, and the task registry.

A task is a plain registered object, not an ``nn.Module``: it owns no optimizer and never changes
``model.forward`` (export, timm interop and ``torch.compile`` rely on plain forwards). It says

- its options (a dataclass: model, data, …) and its recipe defaults (epochs, lr, … of the engine's recipe);
- how to build the data (train and test splits, a ``collate_fn`` where batches need one, and a JSON-able
  ``meta`` saved with the run: classes, transforms, … so a run's model rebuilds without its data);
- how to build the model from (options, meta), an example input (FLOPs, export, latency), and how a batch
  goes to the device (``(inputs, target)``; channels_last only for 4-D images);
- the loss, a metric whose state is one tensor of sums (so DDP reduces it with one all-reduce), and which
  metric decides the best checkpoint, in which direction.

The engine keeps everything every task shares: the recipe, the run folder, checkpoints, exact resume,
DDP, progress, curves, compare. It never names a task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from .._names import Registry

__all__ = [
    "TASKS",
    "Metric",
    "Task",
    "TaskData",
    "get_task",
    "list_tasks",
    "option",
    "options_from_dict",
    "register_task",
]


def option(default: Any, help: str, *, choices: Sequence[str] | None = None, flag: str | None = None) -> Any:
    """A task option: a dataclass field whose metadata gives the CLI its help and choices.

    ``flag`` overrides the CLI spelling (default ``--field-name``).
    """
    meta = {"help": help, "choices": tuple(choices) if choices else None, "flag": flag}
    return field(default=default, metadata=meta)


def options_from_dict(cls: type, values: dict, *, task: str) -> Any:
    """``cls(**values)``, with unknown keys refused by name (a misspelled option is never swallowed)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"task {task!r}: unknown options {unknown}; its options are {sorted(known)}")
    return cls(**values)


@dataclass
class TaskData:
    """A task's data: train and test splits, the batch ``collate_fn`` (None: torch's default), ``meta``,
    JSON-able facts saved with the run (classes, transforms, …) from which the model and predict rebuild, and
    ``source``, the task's own view of the data (raw texts, …) for its baselines and pictures. With
    ``lengths``, the engine batches training samples of similar length together."""

    train: Dataset
    test: Dataset
    meta: dict
    collate_fn: Callable | None = None
    source: Any = None
    lengths: Sequence[int] | None = None  # per training sample: batches of similar lengths (less padding)


class Metric:
    """Metric state as one float64 tensor of sums: ``update`` adds to ``sums``, DDP all-reduces it once,
    ``compute`` turns the sums into named values.

    ``compute`` returns (scalars, details): scalars go to metrics.jsonl and the progress line (the engine
    prefixes them with ``train_`` / ``val_``), details (a confusion matrix, per-class figures) to the checkpoint.
    """

    def __init__(self, size: int) -> None:
        self.sums = torch.zeros(size, dtype=torch.float64)

    def update(self, output: Any, target: Any, loss: Tensor | None) -> None:
        """Add a batch; ``loss`` is the batch's training loss (the mean), None in evaluation."""
        raise NotImplementedError

    def compute(self) -> tuple[dict[str, float], dict]:
        raise NotImplementedError


class Task:
    """The base every task extends; see the module docstring. Subclasses set the class attributes."""

    name: ClassVar[str]
    Options: ClassVar[type]  # a dataclass of ``option`` fields
    recipe: ClassVar[dict] = {}  # the engine's recipe defaults for this task (epochs, lr, …)
    monitor: ClassVar[tuple[str, str]] = ("val_loss", "min")  # (metric, "max" | "min") for best.safetensors
    unit: ClassVar[str] = "samples"  # what one sample is, for throughput: images, texts, clips
    description: ClassVar[str] = ""
    eval_batch_size: ClassVar[int] = 256
    default_vary: ClassVar[dict[str, list[str]]] = {}  # what ``attnlab compare`` varies when not told

    # -- data and model -------------------------------------------------------------------------------------
    def check_names(self, options: Any) -> None:
        """Refuse unknown names among the options (model, data, …) before anything is built or written."""

    def build_data(self, options: Any, *, download: bool = False) -> TaskData:
        raise NotImplementedError

    def build_model(self, options: Any, meta: dict) -> nn.Module:
        raise NotImplementedError

    def example_input(self, options: Any, meta: dict, batch: int = 1) -> tuple[Tensor, ...]:
        """Inputs of one forward pass (FLOPs, export, latency)."""
        raise NotImplementedError

    def initialize(self, model: nn.Module, options: Any, meta: dict, read_run: Callable) -> list[str]:
        """Initial weights of a fresh run (never on ``--resume`` nor when a run is loaded): transfer learning.

        ``read_run(path)`` returns another run folder's (config dict, model state dict). Returns lines to print
        (which keys were loaded, which were left at init). Nothing by default."""
        return []

    def lr_scale(self, name: str, options: Any) -> float:
        """The factor on the learning rate of parameter ``name`` (a smaller one for a transferred backbone)."""
        return 1.0

    def prepare_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The model on ``device``, in the memory format its batches use."""
        return model.to(device)

    def to_device(self, batch: Any, device: torch.device) -> tuple[tuple[Tensor, ...], Any]:
        """A loader's batch -> (model inputs, target) on ``device``."""
        x, y = batch
        return (x.to(device, non_blocking=True),), y.to(device, non_blocking=True)

    def forward(self, model: nn.Module, inputs: tuple[Tensor, ...], options: Any, *, training: bool) -> Any:
        """The model's output for a batch (a task may evaluate differently, e.g. tile a whole image)."""
        return model(*inputs)

    # -- loss and metrics -----------------------------------------------------------------------------------
    def loss(self, output: Any, target: Any, options: Any) -> Tensor:
        raise NotImplementedError

    def metric(self, options: Any, meta: dict, *, training: bool) -> Metric:
        raise NotImplementedError

    def baselines(self, options: Any, data: TaskData) -> dict[str, dict[str, float]]:
        """Classical baselines measured on the same test split: name -> the same ``val_*`` metrics as the model
        (summary.json and ``compare`` show them beside the network). None by default."""
        return {}

    # -- what a run is called and shows -----------------------------------------------------------------------
    def title(self, options: Any) -> str:
        """One line naming the run: model, attention, data."""
        return f"{self.name}: {options}"

    def default_out(self, options: Any) -> Path:
        return Path("runs") / self.name

    # -- predict and visualize: what the commands of the same names read and write ----------------------------
    def predict(self, model: nn.Module, options: Any, meta: dict, inputs: list[str], args: Any) -> list[dict]:
        """One row per input (file or text), each with an ``input`` key and an ``error`` key when it failed."""
        raise NotImplementedError(f"task {self.name!r} has no predict yet")

    def add_predict_arguments(self, parser: Any) -> None:
        """Extra ``attnlab predict`` arguments this task reads (none by default)."""

    def predict_reads_no_files(self, args: Any) -> bool:
        """Whether ``predict`` has inputs other than files (``--text``), so no file is needed."""
        return False

    def format_prediction(self, row: dict) -> str:
        """One printed line per input."""
        return f"{row['input']}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "input")

    def prediction_fields(self, row: dict) -> dict:
        """A row of ``predict --out FILE.csv``."""
        return dict(row)

    def export_dynamic(self) -> dict[int, dict[int, str]] | None:
        """Dimensions of the example input that stay free in an export (None: the batch of every input)."""
        return None

    def visualize(self, model: nn.Module, options: Any, meta: dict, data: TaskData, out: Path, count: int) -> Path:
        raise NotImplementedError(f"task {self.name!r} has no visualize yet")

    def eval_details(self, details: dict, meta: dict) -> list[tuple[str, dict[str, str]]]:
        """Tables (title, {row: value}) that ``attnlab eval`` prints after the scalars (none by default)."""
        return []


TASKS: Registry[Task] = Registry("task", "attnlab train --help", describe=lambda task: type(task).__qualname__)


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register one instance of ``cls`` under ``cls.name``."""
    TASKS.add(cls.name, cls())
    return cls


def get_task(name: str) -> Task:
    return TASKS.get(name)


def list_tasks() -> list[str]:
    return TASKS.names()
