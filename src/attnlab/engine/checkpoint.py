"""Checkpoints: safetensors weights whose header carries the JSON state, written atomically.

A checkpoint ``NAME`` in a run folder is ``NAME.safetensors``: tensors (model, optimizer buffers, torch RNG)
plus, in the file's metadata, one JSON document (config, epoch, metrics, optimizer and scheduler settings,
Python and NumPy RNG). One file is one atomic write (temporary file, fsync, rename), so a crash leaves the
previous checkpoint whole. ``NAME.json`` beside it is a readable copy of the metadata. Loading never
unpickles: safetensors holds tensors only and the rest is JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from .._files import atomic_write, atomic_write_text

__all__ = [
    "atomic_write_text",
    "save_checkpoint",
    "load_checkpoint",
    "load_checkpoint_document",
    "CheckpointError",
    "FORMAT",
]

FORMAT = "attnlab-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, corrupted or from another model."""


def _split_optimizer(state: dict) -> tuple[dict[str, Tensor], dict]:
    """torch optimizer state_dict -> (tensors by flat key, JSON-able rest)."""
    tensors, scalars = {}, {}
    for idx, per_param in state["state"].items():
        scalars[str(idx)] = {}
        for k, v in per_param.items():
            if isinstance(v, Tensor):
                tensors[f"optim.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[str(idx)][k] = v
    return tensors, {"state": scalars, "param_groups": state["param_groups"]}


def _join_optimizer(tensors: dict[str, Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in meta["state"].items()}
    for key, t in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = t
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    meta: dict,
    *,
    optimizer=None,
    scheduler=None,
    rng: dict | None = None,
    extra: dict[str, Tensor] | None = None,
) -> Path:
    """Write ``path`` (.safetensors) and its readable ``.json`` copy; ``meta`` must be JSON-able. ``extra``:
    more tensors under their own keys (a weight average's, ``engine.averaging``)."""
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({k: v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
    doc = {"format": FORMAT, **meta}
    if optimizer is not None:
        opt_tensors, doc["optimizer"] = _split_optimizer(optimizer.state_dict())
        tensors.update(opt_tensors)
    if scheduler is not None:
        doc["scheduler"] = scheduler.state_dict()
    if rng is not None:
        tensors["rng.torch"] = rng.pop("torch")
        doc["rng"] = rng
    text = json.dumps(doc, indent=1, default=float)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"attnlab": text}))
    atomic_write_text(path.with_suffix(".json"), text + "\n")
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict]:
    """(tensors by key, the JSON document); CheckpointError if the file is missing or damaged."""
    return _read(Path(path), tensors=True)


def load_checkpoint_document(path: str | Path) -> dict:
    """The JSON document alone (config, epoch, data meta, …): the header is read, no tensor is."""
    return _read(Path(path), tensors=False)[1]


def _read(path: Path, *, tensors: bool) -> tuple[dict[str, Tensor], dict]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint: no file at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            found = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}  # noqa: SIM118  (no items())
        doc = json.loads(meta["attnlab"])
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint: {path} is truncated or corrupted ({type(e).__name__}: {e})") from None
    if doc.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint: {path} has format {doc.get('format')!r}, expected {FORMAT!r}")
    return found, doc


def model_state(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}


def restore_optimizer(optimizer, tensors: dict[str, Tensor], doc: dict) -> None:
    optimizer.load_state_dict(_join_optimizer(tensors, doc["optimizer"]))
