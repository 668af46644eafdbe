"""The resolved arguments of a training run, written to ``config.json`` in the run folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["TrainConfig", "OPTIMIZERS", "SCHEDULES"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine")


@dataclass
class TrainConfig:
    """Everything that decides a run's result (``out``, ``resume`` and the like are not part of it)."""

    model: str = "resnet18"
    attention: str | None = "cbam"
    data: str = "mnist5k"
    data_dir: str | None = None
    stem: str | None = None  # None: the data set's (CIFAR stem for small images)
    epochs: int = 15  # the default recipe: under 3 min on 2 CPU cores for ResNet18 + CBAM on mnist5k
    batch_size: int = 256
    lr: float = 0.2
    optimizer: str = "sgd"  # SGD with Nesterov momentum 0.9, or AdamW
    schedule: str = "onecycle"
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    seed: int = 0
    freeze_bn: bool = False  # batch-norm layers in eval mode: frozen statistics (fine-tuning, exact DDP checks)
    train_limit: int | None = None  # use only the first N training images (quick runs)

    def __post_init__(self) -> None:
        if self.attention in ("none", ""):
            self.attention = None
        checks = [
            (self.epochs >= 1, "--epochs", "a positive int", self.epochs),
            (self.batch_size >= 1, "--batch-size", "a positive int", self.batch_size),
            (self.lr > 0, "--lr", "a positive number", self.lr),
            (self.weight_decay >= 0, "--weight-decay", "a number >= 0", self.weight_decay),
            (0 <= self.label_smoothing < 1, "--label-smoothing", "a number in [0, 1)", self.label_smoothing),
            (self.optimizer in OPTIMIZERS, "--optimizer", f"one of {OPTIMIZERS}", self.optimizer),
            (self.schedule in SCHEDULES, "--schedule", f"one of {SCHEDULES}", self.schedule),
            (self.train_limit is None or self.train_limit >= 1, "--train-limit", "a positive int", self.train_limit),
        ]
        for ok, name, expected, got in checks:
            if not ok:
                raise ValueError(f"{name}: expected {expected}, got {got!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
