"""The Task seam: what a task (classification, segmentation, …) tells the engine and the command line.

A task is a plain object bound to its options (not an ``nn.Module``: it owns no optimizer and never changes
``model.forward``; export, timm interop and ``torch.compile`` rely on plain forwards). It has two faces:

- ``Task``, what the **engine** calls: the data (one ``TaskData`` from the task's ``DataSets`` registry), the
  model, an example input, the training and the evaluation forward (two methods), one loss used for training
  and evaluation, a metric whose state is one tensor of sums (DDP reduces it with one all-reduce), the
  monitored metric and its direction, and which metrics are fractions (shown in percent);
- ``TaskCLI``, what the **command line** calls: the task's own ``predict`` flags, predict, visualize and the
  tables of ``attnlab eval``.

A task's options are a dataclass of ``option`` fields: the CLI makes one flag per field for that task alone
(two tasks may use one name with other types, choices and help). ``meta`` is what the data says about itself
(classes, channels, transforms: JSON, saved with the run), from which the model and predict rebuild without
the data. The engine keeps everything every task shares: the recipe, the run folder, checkpoints, exact
resume, DDP, progress, curves, compare. It never names a task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

from .._names import Registry
from ..data.splits import VAL_SEED, stratified_indices

__all__ = [
    "TASKS",
    "DataSets",
    "Metric",
    "Prerequisite",
    "RunSource",
    "Task",
    "TaskCLI",
    "TaskData",
    "check_at_least",
    "get_task",
    "list_tasks",
    "none_if_blank",
    "option",
    "options_from_dict",
    "register_task",
]


# -- options ----------------------------------------------------------------------------------------------------
def option(default: Any, help: str, *, choices: Sequence[str] | None = None, flag: str | None = None) -> Any:
    """A task option: a dataclass field whose metadata gives the CLI its help and choices.

    ``flag`` overrides the CLI spelling (default ``--field-name``).
    """
    meta = {"help": help, "choices": tuple(choices) if choices else None, "flag": flag}
    return field(default=default, metadata=meta)


def flag_of(f: dataclasses.Field) -> str:
    """The command-line spelling of an option field: ``--field-name`` unless the option names its own."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def options_from_dict(cls: type, values: dict, *, task: str) -> Any:
    """``cls(**values)``, with unknown keys refused by name (a misspelled option is never swallowed)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"task {task!r}: unknown options {unknown}; its options are {sorted(known)}")
    return cls(**values)


def none_if_blank(value: str | None) -> str | None:
    """``"none"`` or ``""`` (as typed on a command line or in a config file) -> None."""
    return None if value in ("none", "") else value


def check_at_least(options: Any, lows: dict[str, float]) -> None:
    """Refuse option values below their minimum, naming the flag: ``check_at_least(self, {"width": 2})``."""
    flags = {f.name: flag_of(f) for f in dataclasses.fields(options)}
    for name, low in lows.items():
        value = getattr(options, name)
        if value < low:
            raise ValueError(f"{flags[name]}: expected {type(value).__name__} >= {low}, got {value!r}")


# -- data -------------------------------------------------------------------------------------------------------
@dataclass
class TaskData:
    """A task's data: train, validation and test splits, the batch ``collate_fn`` (None: torch's default),
    ``meta``, JSON-able facts saved with the run (classes, transforms, ``notes`` printed at the start, …) from
    which the model and predict rebuild, and ``source``, the data set's own view of itself (raw texts, clips, …)
    for the task's baselines and pictures. With ``lengths``, the engine batches training samples of similar
    length.

    ``val`` is the data set's own validation split; a builder whose data has none leaves it None and gives
    ``labels`` (the class of each training sample, for a stratified carve) and ``train_eval`` (the training
    samples under the evaluation transform, index for index), and the task carves it (``Task.split_validation``).
    Choices (best checkpoint, early stopping) look at ``val``; ``test`` is scored once, at the end."""

    train: Dataset
    test: Dataset
    meta: dict
    collate_fn: Callable | None = None
    source: Any = None
    lengths: Sequence[int] | None = None  # per training sample: batches of similar lengths (less padding)
    val: Dataset | None = None
    labels: Sequence[int] | None = None  # per training sample: its class (a stratified validation carve)
    train_eval: Dataset | None = None  # the training samples as evaluation sees them (no augmentation)
    split: dict | None = None  # after a carve: {"train": [...], "val": [...]} indices into the training split

    def training_samples(self) -> Dataset:
        """The samples the network trains on (a carved validation left out), as evaluation reads them (no
        augmentation): what a classical baseline is fitted on."""
        base = self.train_eval if self.train_eval is not None else self.train
        return base if self.split is None else Subset(base, self.split["train"])


class DataSets(Registry[Callable[..., TaskData]]):
    """A task's data sets, one shape for every task: ``builder(options, *, download) -> TaskData``.

    @CLASSIFY_DATA.register("mnist5k")
    def mnist5k(options: ClassifyOptions, *, download: bool = False) -> TaskData: ...
    """

    def __init__(self, task: str) -> None:
        super().__init__(f"--data ({task})", f"attnlab train --task {task} --help")

    def build(self, name: str, options: Any, *, download: bool = False) -> TaskData:
        return self.get(name)(options, download=download)


# -- metrics ----------------------------------------------------------------------------------------------------
class Metric:
    """Metric state as one float64 tensor of sums: ``update`` adds to ``sums``, DDP all-reduces it once,
    ``compute`` turns the sums into named values.

    ``compute`` returns (scalars, details): scalars go to metrics.jsonl and the progress line (the engine
    prefixes them with ``train_`` / ``val_``), details (a confusion matrix, per-class figures) to the checkpoint.
    """

    def __init__(self, size: int) -> None:
        self.sums = torch.zeros(size, dtype=torch.float64)

    def update(self, output: Any, target: Any, loss: Tensor) -> None:
        """Add a batch; ``loss`` is the task's loss of the batch (its mean), in training and in evaluation."""
        raise NotImplementedError

    def compute(self) -> tuple[dict[str, float], dict]:
        raise NotImplementedError


@dataclass(frozen=True)
class Prerequisite:
    """A run another run needs (the run it transfers from): trained first, into ``folder``, when it is missing."""

    folder: Path
    task: str
    values: dict  # recipe fields and options over that task's defaults
    why: str  # one line for the log: why this run is made
    same_validation: bool = False  # made with the dependent run's --val-fraction: it holds out the same samples


class RunSource(Protocol):
    """Another run folder, as the engine reads it for a task that transfers from it (``Task.runs``)."""

    def config(self, path: str | Path) -> dict:
        """Its config.json (task, recipe, options); FileNotFoundError naming the file when it is no run."""

    def meta(self, path: str | Path) -> dict:
        """Its data meta, as its run resolved it (classes, stem, …)."""

    def weights(self, path: str | Path) -> dict[str, Tensor]:
        """Its model's state dict (best checkpoint, else last)."""


# -- the engine's face ------------------------------------------------------------------------------------------
class Task:
    """What the engine calls; a task subclasses it and sets the class attributes.

    ``task = TaskClass(options)``; the engine sets ``task.meta`` from the built data (or from a saved run) before
    it asks for the model, and ``task.runs`` when the task may read other runs (transfer learning).
    """

    name: ClassVar[str]
    Options: ClassVar[type]  # a dataclass of ``option`` fields
    CLI: ClassVar[type[TaskCLI]]  # the command line's face (set below: TaskCLI)
    recipe: ClassVar[dict] = {}  # the engine's recipe defaults for this task (epochs, lr, …)
    monitor: ClassVar[tuple[str, str]] = ("val_loss", "min")  # (metric, "max" | "min") for best.safetensors
    unit: ClassVar[str] = "samples"  # what one sample is, for throughput: images, texts, clips
    description: ClassVar[str] = ""
    eval_batch_size: ClassVar[int] = 256
    default_vary: ClassVar[dict[str, list[str]]] = {}  # what ``attnlab compare`` varies when not told
    renamed: ClassVar[dict[str, str]] = {}  # old option name -> new: run folders from before a rename still load
    # a class (or a set of labels) per sample: summary.json keeps the test predictions (paired tests)
    classifies: ClassVar[bool] = False
    cpu_bf16: ClassVar[bool] = False  # whether bf16 autocast speeds its training on a CPU with bf16 (--precision auto)

    def __init__(self, options: Any, *, meta: dict | None = None, runs: RunSource | None = None) -> None:
        self.options = options
        self._meta = meta
        self.runs = runs

    @property
    def meta(self) -> dict:
        if self._meta is None:
            raise RuntimeError(f"task {self.name!r}: no data meta yet (build_data first, or load a run)")
        return self._meta

    @meta.setter
    def meta(self, meta: dict) -> None:
        self._meta = meta

    @property
    def saved_meta(self) -> dict | None:
        """The meta of a loaded run (what it resolved when it started), None for a run not built yet."""
        return self._meta

    @classmethod
    def is_fraction(cls, metric: str) -> bool:
        """Whether a metric (``acc``, ``val_dice``, …) is a fraction, shown in percent. Every metric but the loss
        by default."""
        return metric.removeprefix("val_").removeprefix("test_").removeprefix("train_") != "loss"

    # -- data and model -----------------------------------------------------------------------------------------
    def check_names(self) -> None:
        """Refuse unknown names among the options (model, data, …) before anything is built or written."""

    def build_data(self, *, download: bool = False) -> TaskData:
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        """The model for ``self.options`` and ``self.meta``."""
        raise NotImplementedError

    def example_input(self, batch: int = 1) -> tuple[Tensor, ...]:
        """Inputs of one forward pass (FLOPs, export, latency)."""
        raise NotImplementedError

    def prerequisites(self) -> list[Prerequisite]:
        """Runs to train before this one when they are missing (the engine makes them and says so). None by
        default."""
        return []

    def initialize(self, model: nn.Module) -> list[str]:
        """Initial weights of a fresh run (never on ``--resume`` nor when a run is loaded): transfer learning,
        reading other runs through ``self.runs``. Returns lines to print. Nothing by default."""
        return []

    def lr_scale(self, name: str) -> float:
        """The factor on the learning rate of parameter ``name`` (a smaller one for a transferred backbone)."""
        return 1.0

    def prepare_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The model on ``device``, in the memory format its batches use."""
        return model.to(device)

    def to_device(self, batch: Any, device: torch.device) -> tuple[tuple[Tensor, ...], Any]:
        """A loader's batch -> (model inputs, target) on ``device``."""
        x, y = batch
        return (x.to(device, non_blocking=True),), y.to(device, non_blocking=True)

    def forward_train(self, model: nn.Module, inputs: tuple[Tensor, ...]) -> Any:
        """The model's output for a training batch."""
        return model(*inputs)

    def forward_eval(self, model: nn.Module, inputs: tuple[Tensor, ...]) -> Any:
        """The model's output for an evaluation batch (a task may evaluate otherwise, e.g. tile whole images)."""
        return model(*inputs)

    # -- loss and metrics ---------------------------------------------------------------------------------------
    def loss(self, output: Any, target: Any) -> Tensor:
        """The batch's loss (a mean); the engine trains on it and reports it in evaluation."""
        raise NotImplementedError

    def eval_loss(self, output: Any, target: Any) -> Tensor:
        """``loss`` on ``forward_eval``'s output: the same loss unless that output has another form."""
        return self.loss(output, target)

    def metric(self, *, training: bool) -> Metric:
        raise NotImplementedError

    def predicted_classes(self, output: Any) -> Tensor:
        """(B,) int64: each sample's class from ``forward_eval``'s output (a task that ``classifies``): the highest
        score. A task with several labels per sample returns (B, K) 0/1 rows instead (``engine.paired``)."""
        return output.float().argmax(1)

    def sample_size(self) -> tuple[float, str]:
        """What one training sample weighs against the recipe's own samples (``engine.plan``: larger samples are
        seen fewer times, so a run keeps about the default run's time), and why, for the log. 1 by default."""
        return 1.0, ""

    def split_validation(self, data: TaskData, fraction: float) -> TaskData:
        """``data`` with a validation split carved from its training split (it has none of its own):
        ``fraction`` of each class of ``data.labels`` (one class where None), at least one of each class, with
        the fixed seed ``VAL_SEED``; the held-out samples read through ``data.train_eval`` (no augmentation).
        A task whose training samples are not items to hold out (random crops) overrides it."""
        n = len(data.train)
        labels = list(data.labels) if data.labels is not None else [0] * n
        if len(labels) != n:
            raise ValueError(f"data.labels: expected one label per training sample ({n}), got {len(labels)}")
        kept, held = stratified_indices(labels, fraction, VAL_SEED, at_least_one=True)
        if len(held) == 0 or len(kept) == 0:
            raise ValueError(
                f"--val-fraction: {n} training samples cannot give a validation split of {fraction:g} and keep "
                "training samples; add samples, or give the data a validation split of its own"
            )
        data.train_eval = data.train_eval if data.train_eval is not None else data.train  # indexed by ``split``
        data.val = Subset(data.train_eval, held.tolist())
        data.train = Subset(data.train, kept.tolist())
        if data.lengths is not None:
            data.lengths = [data.lengths[i] for i in kept]
        data.labels = [labels[i] for i in kept]
        data.split = {"train": kept.tolist(), "val": held.tolist()}
        data.meta["val_fraction"] = fraction  # the carve, for runs that must hold out the same samples
        data.meta.setdefault("notes", []).append(
            f"validation: {len(held)} of the {n} training samples ({fraction:g} of each class, seed {VAL_SEED}); "
            f"training on the other {len(kept)}, testing once at the end on the {len(data.test)} test samples"
        )
        return data

    def fit_after_training(self, model: nn.Module, data: TaskData, device: torch.device) -> dict:
        """Choices made after training, on the validation split with the best weights, before the test split is
        scored (the segmentation task's thresholds): entries for the run's meta (saved with the best checkpoint,
        read by eval and predict) and ``lines`` to print. Nothing by default."""
        return {}

    def baselines(self, data: TaskData) -> dict[str, dict[str, float]]:
        """Classical baselines, fitted on the training split and scored on the same test split as the model:
        name -> the same ``test_*`` metrics (summary.json and ``compare`` show them beside the network). None
        by default."""
        return {}

    # -- what a run is called -----------------------------------------------------------------------------------
    def title(self) -> str:
        """One line naming the run: model, attention, data."""
        return f"{self.name}: {self.options}"

    def default_out(self) -> Path:
        return Path("runs") / self.name

    def export_dynamic(self) -> dict[int, dict[int, str]] | None:
        """Dimensions of the example input that stay free in an export (None: the batch of every input)."""
        return None


# -- the command line's face ------------------------------------------------------------------------------------
class TaskCLI:
    """What the command line calls for a task: its own ``predict`` flags, predict, visualize, eval's tables.

    Built around a task bound to a loaded run (``TaskCLI(task)``); ``predict`` reads only the flags that
    ``add_predict_arguments`` declared.
    """

    out_folder: ClassVar[bool] = False  # predict's --out names the folder the task writes its files to, not a CSV

    def __init__(self, task: Task) -> None:
        self.task = task

    @classmethod
    def add_predict_arguments(cls, parser: Any) -> None:
        """This task's own ``attnlab predict`` flags (none by default)."""

    def reads_no_files(self, args: Any) -> bool:
        """Whether ``predict`` has inputs other than files (``--text``), so no file is needed."""
        return False

    def predict(self, model: nn.Module, inputs: list[str], args: Any) -> list[dict]:
        """One row per input (file or text), each with an ``input`` key and an ``error`` key when it failed."""
        raise ValueError(f"task {self.task.name!r} has no predict")

    def format_prediction(self, row: dict) -> str:
        """One printed line per input."""
        return f"{row['input']}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "input")

    def prediction_fields(self, row: dict) -> dict:
        """A row of ``predict --out FILE.csv``."""
        return dict(row)

    def visualize(self, model: nn.Module, data: TaskData, out: Path, count: int, details: Callable[[], dict]) -> Path:
        """Draw the first ``count`` test samples of ``data`` into ``out``. ``details()`` gives the run's evaluation
        details on ``data`` (the checkpoint's saved ones when ``data`` is the run's, else evaluated then)."""
        raise ValueError(f"task {self.task.name!r} draws nothing (no visualize)")

    def eval_details(self, details: dict) -> list[tuple[str, dict[str, str]]]:
        """Tables (title, {row: value}) that ``attnlab eval`` prints after the scalars (none by default)."""
        return []


Task.CLI = TaskCLI

TASKS: Registry[type[Task]] = Registry("task", "attnlab list tasks")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a task class under ``cls.name``."""
    TASKS.add(cls.name, cls)
    return cls


def get_task(name: str) -> type[Task]:
    return TASKS.get(name)


def list_tasks() -> list[str]:
    return TASKS.names()
