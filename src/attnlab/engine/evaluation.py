"""Evaluate a run folder's checkpoint: ``attnlab eval`` and ``attnlab compare`` share it."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from .checkpoint import CheckpointError, load_checkpoint, model_state
from .config import TrainConfig
from .distributed import DistContext, resolve_device
from .loop import evaluate
from .trainer import build_data, build_model, load_model_weights

__all__ = ["checkpoint_file", "load_run_model", "evaluate_run"]


def checkpoint_file(path: str | Path) -> Path:
    """A run folder -> its best.safetensors (else last.safetensors); a .safetensors file as it is."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"--checkpoint: {path} holds no best.safetensors or last.safetensors")
    if not path.is_file():
        raise CheckpointError(f"--checkpoint: no run folder or checkpoint at {path}")
    return path


def load_run_model(path: str | Path, *, data: str | None = None, data_dir: str | None = None, device: str = "cpu"):
    """(model in eval mode, DataBundle, config, checkpoint document) for a run folder or checkpoint file."""
    file = checkpoint_file(path)
    tensors, doc = load_checkpoint(file)
    config = TrainConfig.from_dict(doc["config"])
    if data is not None:
        config.data = data
    if data_dir is not None:
        config.data_dir = data_dir
    config.train_limit = None
    bundle = build_data(config)
    model = build_model(config, bundle)
    load_model_weights(model, model_state(tensors), file)
    return model.to(resolve_device(device)).eval(), bundle, config, doc


def evaluate_run(
    path: str | Path, *, data: str | None = None, data_dir: str | None = None, device: str = "cpu", workers: int = 0
) -> dict:
    model, bundle, config, doc = load_run_model(path, data=data, data_dir=data_dir, device=device)
    ctx = DistContext(device=next(model.parameters()).device)
    loader = DataLoader(bundle.test, 256, num_workers=workers)
    metrics = evaluate(model, loader, bundle.num_classes, ctx)
    return {
        "checkpoint": str(checkpoint_file(path)),
        "epoch": doc["epoch"],
        "data": config.data,
        "classes": bundle.classes,
        **metrics,
    }
