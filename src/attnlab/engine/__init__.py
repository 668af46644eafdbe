"""Engine: the training loop, evaluation, checkpoints, multi-process training."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .distributed import DistContext, setup_distributed
from .loop import evaluate, train_one_epoch
from .trainer import RunError, RunOptions, fit

__all__ = [
    "CheckpointError",
    "DistContext",
    "RunError",
    "RunOptions",
    "TrainConfig",
    "evaluate",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
    "setup_distributed",
    "train_one_epoch",
]
