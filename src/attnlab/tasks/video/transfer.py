"""Transfer learning for the video task: the frame ResNet from an image run (``--backbone``) or a torchvision
checkpoint (``--backbone-weights``), composed of small steps: read the image run, choose the frame architecture,
choose the source of the weights, drop the image classifier (and the run's attention modules when others are
asked for), check the architecture, load, and say what was done."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from ...models.weights import adapt_input_channels, load_torchvision_weights, read_state_dict
from ..base import RunSource, none_if_blank

__all__ = [
    "DEFAULT_BACKBONE",
    "INHERIT",
    "BackboneRun",
    "Source",
    "check_architecture",
    "choose_source",
    "drop_classifier_and_other_attention",
    "drop_keys",
    "frame_architecture",
    "frozen_stages",
    "load_backbone",
    "read_backbone_run",
    "transfer",
    "transfer_lines",
]

# Where `attnlab train` (the default image run: classify's default options) writes, as classify's default_out()
# spells it; the video task may not import the classify task, so the path is written here, and
# tests/test_video.py checks that the two agree.
DEFAULT_BACKBONE = "runs/resnet18-cbam-mnist5k"
INHERIT = "backbone"  # --attention backbone: the --backbone run's modules (no module without a run)


@dataclass
class BackboneRun:
    """The image run a frame backbone comes from: its path and config.json (``stem`` as that run resolved it),
    read through the engine's ``runs``."""

    path: str
    config: dict
    runs: RunSource = field(repr=False)

    def weights(self) -> dict[str, Tensor]:
        """Its model's state dict (best checkpoint, else last)."""
        return dict(self.runs.weights(self.path))

    @property
    def model(self) -> str | None:
        return self.config.get("model")

    @property
    def attention(self) -> str | None:
        return none_if_blank(self.config.get("attention"))

    @property
    def stem(self) -> str | None:
        return self.config.get("stem")


def read_backbone_run(path: str, runs: RunSource | None) -> BackboneRun:
    """The ``--backbone`` run, read through the engine's ``runs``; clear errors when it is no image run of a
    ResNet. Its stem, when its options left it to the data, is the one its checkpoint's data meta saved."""
    if runs is None:
        raise ValueError(f"--backbone {path}: this video task reads no other runs (it was built without runs=)")
    try:
        config = dict(runs.config(path))
    except FileNotFoundError as e:
        hint = (
            "; the default video run transfers the default image run's backbone: run `attnlab train` first "
            "(about 1.5 min on 2 CPU cores), or pass --backbone none to train the frame backbone from scratch"
            if path == DEFAULT_BACKBONE
            else ""
        )
        raise FileNotFoundError(f"--backbone {e}{hint}") from None
    task, model = config.get("task", "classify"), config.get("model")
    if task != "classify" or not str(model or "").startswith("resnet"):
        raise ValueError(
            f"--backbone {path}: expected an image classification run of a ResNet, got task {task!r}, model {model!r}"
        )
    if config.get("stem") is None:  # the data set's stem, resolved when the run started
        config["stem"] = runs.meta(path).get("stem")
    return BackboneRun(path, config, runs)


ARCHITECTURE = ("frame_model", "attention", "stem")  # the frame ResNet, as a run's meta keeps it


def frame_architecture(options: Any, run: BackboneRun | None) -> dict:
    """The frame ResNet: the options where given, else the --backbone run's, else resnet18, no attention,
    ImageNet's stem (as mnist5k's image runs: their 28-px digits, like moving_digits' 32-px frames)."""
    attention = (run.attention if run else None) if options.attention == INHERIT else options.attention
    return {
        "frame_model": options.frame_model or (run.model if run else None) or "resnet18",
        "attention": none_if_blank(attention),
        "stem": options.stem or (run.stem if run else None) or "imagenet",
    }


def frozen_stages(options: Any, meta: dict, run: BackboneRun | None) -> int:
    """The stages of the frame ResNet held fixed (``--frozen-stages``; models.video.stem_and_stages): as given, else
    1, the stem and layer1, where those transfer whole (an image run whose modules the frames keep, at their
    paper's place; a torchvision checkpoint into a ResNet of ImageNet's stem with no modules added), else -1.
    Measured on moving_digits (docs/video.md): level with fine-tuning them on validation, 1.25× faster a step."""
    if options.frozen_stages is not None:
        return options.frozen_stages
    if run is not None:
        at_place = run.config.get("placement") is None and run.config.get("stages") is None  # the video's places
        whole = run.attention == meta["attention"] and (meta["attention"] is None or at_place)
    else:
        whole = bool(options.backbone_weights) and meta["attention"] is None and meta["stem"] == "imagenet"
    return 1 if whole else -1


@dataclass
class Source:
    """Where the frame backbone's weights come from: the flag that named it, its state dict, and the image run
    (None for a torchvision checkpoint)."""

    flag: str
    state: dict[str, Tensor]
    run: BackboneRun | None = None
    unused: list[str] = field(default_factory=list)  # what of it the backbone does not take, for the lines


def choose_source(options: Any, run: BackboneRun | None) -> Source | None:
    """The weights to transfer: the --backbone run's, a --backbone-weights file's, or None (scratch)."""
    if run is not None:
        return Source(f"--backbone {run.path}", run.weights(), run)
    if options.backbone_weights:
        return Source(f"--backbone-weights {options.backbone_weights}", read_state_dict(options.backbone_weights))
    return None


def drop_keys(source: Source, drop: Callable[[str], bool]) -> list[str]:
    """Remove the keys ``drop`` picks from the source's state; returns them, sorted."""
    dropped = sorted(k for k in source.state if drop(k))
    for k in dropped:
        del source.state[k]
    return dropped


def _is_attention(key: str) -> bool:
    return key.startswith("attn.") or ".attn." in key


def drop_classifier_and_other_attention(source: Source, meta: dict) -> None:
    """The image classifier (``fc``, the image task's classes) never transfers; the run's attention modules do
    not when --attention asks for other modules than the run's (its ResNet transfers, its modules do not)."""
    source.unused += drop_keys(source, lambda k: k.startswith("fc."))
    if source.run is not None and source.run.attention != meta["attention"]:
        theirs = drop_keys(source, _is_attention)
        if theirs:
            source.unused.append(f"{len(theirs)} tensors of the run's {source.run.attention} modules")


def check_architecture(source: Source, backbone: nn.Module, meta: dict) -> None:
    """An image run must be of the frame ResNet (depth, stem): else a ValueError naming the layers that differ."""
    run = source.run
    if run is None or (run.model, run.stem) == (meta["frame_model"], meta["stem"]):
        return
    target = backbone.state_dict()
    missing = sorted({k.rsplit(".", 1)[0] for k in target if k not in source.state and ".attn." not in k})
    extra = sorted({k.rsplit(".", 1)[0] for k in source.state if k not in target})
    raise ValueError(
        f"{source.flag}: a {run.model} ({run.stem} stem) run; the frame backbone is {meta['frame_model']} "
        f"({meta['stem']} stem): layers only in the backbone {missing[:4]}, only in the run {extra[:4]}; drop "
        "--frame-model / --stem to take the run's"
    )


def load_backbone(source: Source, backbone: nn.Module, meta: dict) -> tuple[int, list[str]]:
    """(tensors loaded, backbone keys left at init): the stem conv adapted to the frames' channels (a digits run's
    gray kernel spread over RGB), skipped where its kernel differs."""
    own_stem = backbone.state_dict()["conv1.weight"]
    theirs = source.state.get("conv1.weight")
    stem_skipped = theirs is not None and adapt_input_channels(theirs, own_stem.shape).shape != own_stem.shape
    try:
        left = load_torchvision_weights(backbone, source.state)
    except ValueError as e:
        raise ValueError(
            f"{source.flag}: its network differs from the frame backbone ({meta['frame_model']} + "
            f"{meta['attention'] or 'no attention'}, {meta['stem']} stem): {e}"
        ) from None
    left = [k for k in left if k not in ("fc.weight", "fc.bias")]  # the backbone's fc is an identity
    return len(source.state) - int(stem_skipped), left


STAGE_WORDS = {0: "the stem", 1: "the stem and layer1"}


def _stage_words(stages: int) -> str:
    """What ``--frozen-stages stages`` (>= 0) holds fixed, in words."""
    return STAGE_WORDS.get(stages, f"the stem and layer1-{stages}")


def transfer_lines(
    source: Source, loaded: int, left: list[str], *, frozen: bool, lr_scale: float, stages: int = -1
) -> list[str]:
    """What the transfer did, as the lines printed at the start of the run."""
    lines = [f"frame backbone: {loaded} tensors loaded from {source.flag}"]
    if left:
        lines.append(f"  left at init: {len(left)} ({', '.join(left[:6])}{', …' if len(left) > 6 else ''})")
    if source.unused:
        lines.append(f"  not used: {', '.join(source.unused)} (the image classes)")
    if frozen:
        lines.append("  frozen (--no-freeze-backbone fine-tunes it)")
        return lines
    rest = "the rest " if stages >= 0 else ""
    if stages >= 0:
        fixed = _stage_words(stages)
        lines.append(f"  {fixed} fixed, batch norms at the source's statistics (--frozen-stages {stages}; -1: none)")
    lines.append(f"  {rest}fine-tuned at {lr_scale:g} × the head's learning rate (--backbone-lr-scale)")
    return lines


def check_frozen_loaded(model: nn.Module, left: list[str]) -> None:
    """Nothing left at init may be held fixed: a ValueError naming the tensors and the flag."""
    fixed = {name for name, p in model.backbone.named_parameters() if not p.requires_grad}
    stuck = sorted(k for k in left if k in fixed)
    if stuck and not model.freeze_backbone:
        raise ValueError(
            f"--frozen-stages: {len(stuck)} tensors of the stages it holds fixed were left at init "
            f"({', '.join(stuck[:4])}): pass --frozen-stages -1 (or fewer stages)"
        )


def transfer(model: nn.Module, options: Any, meta: dict, run: BackboneRun | None) -> list[str]:
    """The frame backbone's initial weights (``model.backbone``) from ``run`` (--backbone) or --backbone-weights;
    returns the lines to print."""
    source = choose_source(options, run)
    stages = meta.get("frozen_stages", -1)
    if source is None:
        lines = ["frame backbone: trained from scratch (--backbone none)"]
        if stages >= 0:  # asked for (the default is -1 without a source): say that they never learn
            lines.append(f"  {_stage_words(stages)} fixed at their initialization (--frozen-stages {stages})")
        return lines
    drop_classifier_and_other_attention(source, meta)
    check_architecture(source, model.backbone, meta)
    loaded, left = load_backbone(source, model.backbone, meta)
    check_frozen_loaded(model, left)
    return transfer_lines(
        source, loaded, left, frozen=model.freeze_backbone, lr_scale=options.backbone_lr_scale, stages=stages
    )
