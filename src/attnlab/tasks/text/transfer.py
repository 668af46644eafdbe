"""The text task starting from a pretrained encoder (``--backbone RUN``, a ``text_mlm`` run): which run, whether it
fits, and the weights it gives.

A pretrained run fits when it read the same texts the same way and built the same encoder: every field of
``ENCODER_FIELDS`` equal (the data, its folder, columns, tokenizer, length, vocabulary's min count, width, depth,
heads, n-gram table). Its vocabulary and length, saved in its meta, must then be this run's; its encoder's
tensors (``encoder.*`` but the head it never used) load by name, the head starts from scratch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from torch import nn

from ...models.text_ensemble import members_of
from ..base import RunSource, flag_of

__all__ = ["AUTO_BACKBONE", "PRETRAIN_FROM", "auto_backbone", "load_encoder", "read_backbone"]

PRETRAIN_TASK = "text_mlm"
AUTO_BACKBONE = "auto"  # --backbone auto: the pretrained run of this encoder and these texts (``auto_backbone``)
# --backbone auto pretrains from this many training texts on. Measured (docs/text.md, "Pretraining"): at 14,064
# reviews +0.55 points on validation and +1.07 on test over three seeds; at 2,160 English paragraphs +2.1 / -1.8
# (one seed); at 610, -10.0 / -1.8.
PRETRAIN_FROM = 5_000
# encoder fields added after pretrained runs were made, with their defaults: a run made before them reads as having
# the default, and at their default they leave ``auto_backbone``'s folder name (its hash) as it was
ADDED_FIELDS = {"multi_label": False, "label_sep": "|"}


def _need_runs(runs: RunSource | None, path: str | Path) -> None:
    if runs is None:
        raise ValueError(f"--backbone {path}: this text task reads no other runs (it was built without runs=)")


def _same(field: str, mine: Any, theirs: Any) -> bool:
    if field == "data_dir" and mine is not None and theirs is not None:
        return Path(mine).resolve() == Path(theirs).resolve()
    return mine == theirs


def auto_backbone(options: Any, fields: tuple[str, ...]) -> Path:
    """The folder of the pretrained run that ``--backbone auto`` reads (and the engine makes when it is missing):
    one per encoder and texts, ``runs/text_mlm-<data>-<hash of the encoder fields>``."""
    values = {f: getattr(options, f) for f in fields}
    values = {f: v for f, v in values.items() if not (f in ADDED_FIELDS and v == ADDED_FIELDS[f])}
    if values.get("data_dir") is not None:
        values["data_dir"] = str(Path(values["data_dir"]).resolve())
    digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    return Path("runs") / f"{PRETRAIN_TASK}-{options.data}-{digest}"


def read_backbone(path: str | Path, runs: RunSource | None, options: Any, fields: tuple[str, ...]) -> dict:
    """The ``--backbone`` run's config, read through the engine's ``runs``; clear errors when it is missing, no
    text_mlm run, or pretrained with other texts or another encoder."""
    _need_runs(runs, path)
    try:
        config = dict(runs.config(path))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"--backbone {e}; make one with `attnlab train --task {PRETRAIN_TASK}`") from None
    if config.get("task") != PRETRAIN_TASK:
        raise ValueError(
            f"--backbone {path}: expected a {PRETRAIN_TASK} run (attnlab train --task {PRETRAIN_TASK}), "
            f"got task {config.get('task')!r}"
        )
    flags = {f.name: flag_of(f) for f in dataclasses.fields(options)}
    for f, default in ADDED_FIELDS.items():
        config.setdefault(f, default)
    differ = [f for f in fields if not _same(f, getattr(options, f), config.get(f))]
    if differ:
        pairs = ", ".join(f"{flags[f]} {config.get(f)!r} (here {getattr(options, f)!r})" for f in differ)
        raise ValueError(
            f"--backbone {path}: pretrained with {pairs}; a pretrained encoder fits runs that read the same texts "
            "alike and build the same encoder: give the same values, or pretrain with these"
        )
    return config


def load_encoder(model: nn.Module, path: str | Path, runs: RunSource | None, meta: dict) -> list[str]:
    """The pretrained encoder's tensors into ``model`` (a ``TextTransformer``, or each network of an ensemble: the
    run's weights read once); the lines the run prints."""
    _need_runs(runs, path)
    theirs = runs.meta(path)
    if theirs.get("vocab") != meta["vocab"] or theirs.get("max_len") != meta["max_len"]:
        raise ValueError(
            f"--backbone {path}: its vocabulary ({len(theirs.get('vocab', []))} tokens, length "
            f"{theirs.get('max_len')}) is not this run's ({len(meta['vocab'])}, {meta['max_len']}): its texts differ"
        )
    if theirs.get("val_fraction") != meta.get("val_fraction"):  # it may have trained on this run's validation
        raise ValueError(
            f"--backbone {path}: pretrained with validation carved as --val-fraction {theirs.get('val_fraction')}, "
            f"this run {meta.get('val_fraction')}: it would have trained on texts this run validates on; pretrain "
            "with this run's --val-fraction"
        )
    networks = members_of(model)
    own = networks[0].state_dict()  # the networks share one architecture
    encoder = {
        k.removeprefix("encoder."): v
        for k, v in runs.weights(path).items()
        if k.startswith("encoder.") and not k.startswith("encoder.head.")
    }
    loaded = {k: v for k, v in encoder.items() if k in own and own[k].shape == v.shape}
    for network in networks:
        network.load_state_dict(loaded, strict=False)
    skipped = sorted(set(encoder) - set(loaded))  # e.g. positions, where a class token makes the table longer
    left = [k for k in own if k not in loaded]
    into = f" (into each of the ensemble's {len(networks)} networks; their heads from scratch)" * (len(networks) > 1)
    lines = [f"encoder: {len(loaded)} pretrained tensors loaded from --backbone {path}{into}"]
    if skipped:
        lines.append(f"  not loaded (another shape here): {', '.join(skipped)}")
    lines.append(f"  from scratch: {len(left)} ({', '.join(left[:6])}{', …' if len(left) > 6 else ''})")
    return lines
