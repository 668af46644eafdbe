"""Load torchvision's ResNet weights into an attnlab ResNet, with or without attention."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["adapt_input_channels", "load_torchvision_weights", "read_state_dict"]


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A state dict from ``.safetensors`` or a torch file (``weights_only``: never unpickles code); keys wrapped by
    DistributedDataParallel (``module.``) or held as a checkpoint's ``model`` (``model.``: attnlab's run
    checkpoints) are unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"state_dict_or_path: no file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return _without_wrapper_prefix(load_file(path))
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # training checkpoints often nest it
    if not isinstance(obj, Mapping):
        raise ValueError(f"state_dict_or_path: {path} holds a {type(obj).__name__}, not a state dict")
    return _without_wrapper_prefix(dict(obj))


# what wraps a network's keys in files users have: DistributedDataParallel ("module."), a training checkpoint that
# holds the network as its ``model`` (attnlab's run checkpoints, many Lightning modules)
WRAPPER_PREFIXES = ("module.", "model.")


def _without_wrapper_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The keys with a prefix that all of them share (WRAPPER_PREFIXES) removed; other tensors of the file (an
    optimizer's) dropped with it."""
    for prefix in WRAPPER_PREFIXES:
        inside = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if len(inside) == len(state) or "conv1.weight" in inside:
            return inside
    return state


def _replaced_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Key prefixes of torchvision layers that an attention module replaced (the branch placements)."""
    return tuple(f"{name}.{layer}." for name, m in model.named_modules() for layer in getattr(m, "replaced", ()))


def adapt_input_channels(weight: Tensor, shape: torch.Size) -> Tensor:
    """A conv kernel (O, C, k, k) for ``shape`` = (O, C', k, k): RGB summed to one channel, one channel repeated
    over C' and divided by C'; ``weight`` unchanged when anything else differs (then it is not loaded)."""
    if weight.shape == shape or weight.shape[0] != shape[0] or weight.shape[2:] != shape[2:]:
        return weight
    if shape[1] == 1:
        return weight.sum(dim=1, keepdim=True)
    if weight.shape[1] == 1:
        return weight.repeat(1, shape[1], 1, 1) / shape[1]
    return weight


def load_torchvision_weights(model: nn.Module, state_dict_or_path: Mapping[str, Tensor] | str | Path) -> list[str]:
    """Copy every matching backbone tensor of a torchvision ResNet state dict into ``model``.

    ``fc`` is skipped when its shape differs (another ``num_classes``), and so is the stem conv of another
    ``stem``. A stem conv that differs only in its input channels is adapted as timm's ``adapt_input_conv``
    does: summed over RGB for one channel, a one-channel kernel repeated and divided by C for C channels (a
    gray image copied into every channel gives the same response). Returns the model's keys left at their
    initial values: the attention modules' (``attn``), and fc / stem where skipped. Raises ``ValueError`` for
    any other shape mismatch and for source keys the model has no place for (another depth, another
    architecture), except those of the 3×3 convs a branch attention replaced.
    """
    source = read_state_dict(state_dict_or_path) if isinstance(state_dict_or_path, (str, Path)) else state_dict_or_path
    if not isinstance(source, Mapping):
        raise TypeError(f"state_dict_or_path: expected a state dict or a path, got {type(source).__name__}")
    target = model.state_dict()
    skippable = ("fc.weight", "fc.bias", "conv1.weight")
    mismatched = [
        f"{k}: model {tuple(target[k].shape)}, weights {tuple(v.shape)}"
        for k, v in source.items()
        if k in target and target[k].shape != v.shape and k not in skippable
    ]
    if mismatched:
        raise ValueError(
            "state_dict_or_path: shapes differ from the model's for "
            + "; ".join(mismatched[:5])
            + (f" (and {len(mismatched) - 5} more)" if len(mismatched) > 5 else "")
        )
    replaced = _replaced_prefixes(model)
    unexpected = [k for k in source if k not in target and not k.startswith(replaced)]
    if unexpected:
        raise ValueError(
            f"state_dict_or_path: {len(unexpected)} keys have no place in the model, e.g. "
            f"{unexpected[:3]}; is it the same ResNet depth?"
        )
    source = dict(source)
    if "conv1.weight" in source and "conv1.weight" in target:
        source["conv1.weight"] = adapt_input_channels(source["conv1.weight"], target["conv1.weight"].shape)
    loadable = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    with torch.no_grad():
        for k, v in loadable.items():
            target[k].copy_(v)
    return sorted(k for k in target if k not in loadable)
