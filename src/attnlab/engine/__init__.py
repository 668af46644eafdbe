"""Engine: the training loop, evaluation, checkpoints, the run folder, multi-process training, compare.

It trains any task (``attnlab.tasks``) and names none of them.
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import Recipe, TrainConfig
from .distributed import DistContext, setup_distributed
from .loop import evaluate, train_one_epoch
from .run_folder import LoadedRun, RunError, load_run
from .trainer import RunOptions, fit

__all__ = [
    "CheckpointError",
    "DistContext",
    "LoadedRun",
    "Recipe",
    "RunError",
    "RunOptions",
    "TrainConfig",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_run",
    "save_checkpoint",
    "setup_distributed",
    "train_one_epoch",
]
