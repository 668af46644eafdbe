"""Video classification: transfer learning from images (an attnlab image run's backbone), attention over frames.

The default run: moving_digits (a digit moving left or right; 20 classes, the order of the frames decides half
of each label), the ResNet18 + CBAM of the default image run (``attnlab train``) as the frame backbone,
fine-tuned at a tenth of the learning rate, and soft attention pooling over the frames. Metrics: cross-entropy,
top-1, top-5, per-class accuracy and, where the data's classes have parts (moving_digits: digit, direction),
each part's accuracy. The baseline is the ``mean`` head (order-blind); the classical references in the same run
are logistic regressions on pooled frames, on frame differences and on pooled optical flow, and on moving_digits
on the pixels of one frame (the direction check: it should stay near half).

A user's videofolder: the frame backbone trains from scratch (``--backbone auto``), each frame's pooled optical
flow sits beside its features (``--motion auto``: flow) and training clips are cropped at random, alike in every
frame (``--crop-scale``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...layers.registry import attention_info
from ...models.registry import create_model, get_model_builder
from ...models.resnet import STEMS
from ...models.video import MOTIONS, TEMPORAL_HEADS, head_parameters
from ..base import Metric, Prerequisite, Task, TaskData, check_at_least, none_if_blank, option, register_task
from ..metrics import TrainAccuracy
from ..top_classes import TopClassesCLI, add_top_argument
from .data import VIDEO_DATA, ClipArrays
from .metrics import ClipMetrics
from .transfer import (
    ARCHITECTURE,
    DEFAULT_BACKBONE,
    INHERIT,
    BackboneRun,
    frame_architecture,
    frozen_stages,
    read_backbone_run,
    transfer,
)

__all__ = ["Video", "VideoCLI", "VideoOptions"]


@dataclass
class VideoOptions:
    model: str = option("video_resnet", "a registered video model (attnlab list models)")
    head: str = option("attention", "temporal head over the frames", choices=tuple(TEMPORAL_HEADS))
    backbone: str | None = option(
        "auto",
        "an attnlab image run folder whose ResNet becomes the frame backbone, none (scratch), or auto: the default "
        f"image run ({DEFAULT_BACKBONE}, made when missing) for moving_digits, scratch for a videofolder's RGB frames "
        "(a digits backbone transfers badly to them: docs/video.md)",
    )
    backbone_weights: str | None = option(None, "a torchvision ResNet checkpoint (.pth) for the frame backbone")
    frame_model: str | None = option(None, "the frame ResNet (default: the --backbone run's, else resnet18)")
    attention: str = option(
        INHERIT,
        f"a zoo module in the frame ResNet (attnlab list attentions), none, or {INHERIT}: the --backbone run's "
        "modules (none without a run)",
    )
    stem: str | None = option(
        None, "ResNet stem of the frames (default: the --backbone run's, else imagenet)", choices=STEMS
    )
    motion: str = option(
        "auto",
        "what each frame's features carry besides its appearance: flow (its optical flow to the next frame, "
        "pyramidal Lucas–Kanade pooled over a 4×4 grid), none, or auto: flow for a videofolder, none for "
        "moving_digits (its default run is measured without)",
        choices=("auto", *MOTIONS),
    )
    freeze_backbone: bool = option(False, "keep the transferred backbone fixed (default: fine-tune it)")
    frozen_stages: int | None = option(
        None,
        "the transferred backbone's stem and first N stages kept fixed, batch norms at the source's statistics "
        "(-1: none, 0: the stem, 1: the stem and layer1, ... 4; default: 1 where the stem and layer1 transfer "
        "whole, else -1)",
    )
    backbone_lr_scale: float = option(0.1, "factor on the transferred backbone's learning rate")
    data: str = option("moving_digits", f"video data set: {', '.join(VIDEO_DATA.names())}")
    data_dir: str | None = option(None, "videofolder: folder with train/<class>/ and val/<class>/ videos")
    num_frames: int = option(8, "frames per clip (T)")
    image_size: int | None = option(
        None, "videofolder: side of the frames (default: the videos' shorter side, at most 112)"
    )
    crop_scale: float = option(
        0.35,
        "videofolder: each training clip is a random crop of at least this fraction of the frame's area, the same "
        "for all its frames (1: none)",
    )
    dim: int = option(256, "width of the temporal head")
    heads: int = option(4, "transformer head: attention heads")
    depth: int = option(1, "transformer head: encoder layers")
    clusters: int = option(8, "clusters head: attention units")
    positions: bool = option(True, "learned temporal position embedding before the attention and clusters heads")
    dropout: float = option(0.1, "dropout before the classifier (and in the transformer)")

    def __post_init__(self) -> None:
        self.backbone_weights = none_if_blank(self.backbone_weights)
        if self.backbone == "auto":  # resolved here, so config.json says which
            digits = self.data == "moving_digits" and self.backbone_weights is None
            self.backbone = DEFAULT_BACKBONE if digits else None
        self.backbone = none_if_blank(self.backbone)
        if self.motion == "auto":  # resolved here, so config.json says which
            self.motion = "none" if self.data == "moving_digits" else "flow"
        # --attention keeps "none" as a word of its own, not None (the CLI reads "none" of an optional field as
        # None): "none" is no module whatever the --backbone run had, INHERIT the run's modules. None, in the
        # config.json of runs made before INHERIT, meant the run's; "" means none.
        self.attention = INHERIT if self.attention is None else self.attention or "none"
        check_at_least(self, {"num_frames": 1, "dim": 4, "backbone_lr_scale": 0})
        if self.frozen_stages is not None and not -1 <= self.frozen_stages <= 4:
            raise ValueError(f"--frozen-stages: expected -1 (none) to 4 (the whole ResNet), got {self.frozen_stages}")
        if not 0 < self.crop_scale <= 1:
            raise ValueError(f"--crop-scale: expected a number in (0, 1], got {self.crop_scale}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout: expected a number in [0, 1), got {self.dropout}")
        if self.backbone and self.backbone_weights:
            raise ValueError("--backbone and --backbone-weights: give one source of backbone weights, not both")


class VideoCLI(TopClassesCLI):
    """predict: the top classes and the frame weights of each video file; visualize: clips as strips of frames."""

    @classmethod
    def add_predict_arguments(cls, parser: Any) -> None:
        add_top_argument(parser, "videos")

    def predict(self, model: nn.Module, inputs: list[str], args: Any) -> list[dict]:
        from .predict import predict_videos

        return predict_videos(model, inputs, self.task.meta, args.top)

    def format_prediction(self, row: dict) -> str:
        weights = " ".join(f"{w:.2f}" for w in row["frame_weights"])
        return f"{super().format_prediction(row)}  frame weights {weights}"

    def prediction_fields(self, row: dict) -> dict:
        return {**super().prediction_fields(row), "frame_weights": " ".join(f"{w:.4f}" for w in row["frame_weights"])}

    def visualize(self, model: nn.Module, data: TaskData, out: Path, count: int, details: Callable[[], dict]) -> Path:
        from .pictures import plot_clips

        return plot_clips(model, data.test, self.task.meta, out, count, self.task.title())


@register_task
class Video(Task):
    """Video classification; the default: the default image run's ResNet18 + CBAM, attention over frames."""

    name = "video"
    Options = VideoOptions
    CLI = VideoCLI
    # the default run: 3 epochs of moving_digits' 3,600 training clips at batch 32 (engine.plan: any other size)
    recipe = {"samples_seen": 10_800, "base_batch": 32, "base_lr": 2e-3, "optimizer": "adamw", "weight_decay": 0.01}
    monitor = ("val_acc", "max")
    unit = "clips"
    classifies = True
    description = "video classification: an image backbone transferred, attention over frames (moving_digits)"
    eval_batch_size = 64
    cpu_bf16 = True  # convolutions: bf16 autocast is 1.2-1.7× faster on CPUs with bf16 (engine.precision)
    default_vary = {"head": list(TEMPORAL_HEADS)}
    options: VideoOptions

    @cached_property
    def backbone_run(self) -> BackboneRun | None:
        """The --backbone image run (config, resolved stem), read once per task object; None without one."""
        return read_backbone_run(self.options.backbone, self.runs) if self.options.backbone else None

    @property
    def transferred(self) -> bool:
        return bool(self.options.backbone or self.options.backbone_weights)

    def prerequisites(self) -> list[Prerequisite]:
        """The default run transfers the default image run's backbone: the engine makes (or finishes) it first
        where it is missing. Another --backbone folder that is missing is an error (check_names says so)."""
        if self.options.backbone != DEFAULT_BACKBONE:
            return []
        why = f"--backbone {DEFAULT_BACKBONE}: the default image run (attnlab train), whose ResNet the clips transfer"
        return [Prerequisite(Path(DEFAULT_BACKBONE), "classify", {}, why)]

    def check_names(self) -> None:
        o = self.options
        get_model_builder(o.model)
        VIDEO_DATA.get(o.data)
        if o.frame_model is not None:
            get_model_builder(o.frame_model)
        if o.attention not in (INHERIT, "none"):
            attention_info(o.attention)
        _ = self.backbone_run  # a missing or wrong --backbone run fails here, before anything is written
        if o.backbone_weights and not Path(o.backbone_weights).is_file():
            raise FileNotFoundError(f"--backbone-weights: no file at {o.backbone_weights}")

    def build_data(self, *, download: bool = False) -> TaskData:
        data = VIDEO_DATA.build(self.options.data, self.options, download=download)
        saved = self.saved_meta
        if saved is not None and "frame_model" in saved:  # a loaded run: its frame ResNet as it was resolved
            data.meta.update({k: saved[k] for k in ARCHITECTURE})  # (its --backbone run need not exist any more)
        else:
            data.meta.update(frame_architecture(self.options, self.backbone_run))  # a loaded run rebuilds from it
        # the motion features the network was built with (runs made before the option had none), the stages it
        # holds fixed (before the option: none)
        if saved is None:
            data.meta["motion"] = self.options.motion
            data.meta["frozen_stages"] = frozen_stages(self.options, data.meta, self.backbone_run)
        else:
            data.meta.update(motion=saved.get("motion", "none"), frozen_stages=saved.get("frozen_stages", -1))
        return data

    def sample_size(self) -> tuple[float, str]:
        """Frame pixels against the default run's clips (8 frames of 32×32: the recipe's ``samples`` are those)."""
        t, side = self.meta["num_frames"], self.meta["image_size"]
        weight = t * side**2 / (8 * 32**2)
        return weight, f"a clip of {t} frames of {side}×{side} weighs {weight:.2g} of the recipe's 8 × 32×32"

    def build_model(self) -> nn.Module:
        o, meta = self.options, self.meta
        return create_model(
            o.model,
            num_classes=len(meta["classes"]),
            num_frames=meta["num_frames"],
            backbone=meta["frame_model"],
            attention=meta["attention"],
            stem=meta["stem"],
            in_chans=meta["in_chans"],
            head=o.head,
            dim=o.dim,
            dropout=o.dropout,
            positions=o.positions,
            motion=meta.get("motion", "none"),  # none: runs made before the option
            freeze_backbone=o.freeze_backbone and self.transferred,
            frozen_stages=meta.get("frozen_stages", -1),  # -1: runs made before the option
            head_kwargs={name: getattr(o, name) for name in head_parameters(o.head)},
        )

    def initialize(self, model: nn.Module) -> list[str]:
        """Transfer: the backbone from an image run (--backbone) or a torchvision checkpoint (--backbone-weights)."""
        lines = transfer(model, self.options, self.meta, self.backbone_run)
        if self.meta.get("motion") == "flow":
            lines.append("motion: each frame's optical flow to the next, pooled over 4×4 cells, beside its features")
        return lines

    def lr_scale(self, name: str) -> float:
        return self.options.backbone_lr_scale if self.transferred and name.startswith("backbone.") else 1.0

    def example_input(self, batch: int = 1) -> tuple[Tensor, ...]:
        meta = self.meta
        size = meta["image_size"]
        return (torch.zeros(batch, meta["num_frames"], meta["in_chans"], size, size),)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output, target)

    def metric(self, *, training: bool) -> Metric:
        meta = self.meta
        return TrainAccuracy() if training else ClipMetrics(len(meta["classes"]), meta.get("label_parts", ()))

    def baselines(self, data: TaskData) -> dict[str, dict[str, float]]:
        """Logistic regression on mean-pooled frames, on frames + their differences and on pooled optical flow
        (``baseline``), fitted on the clips the network trains on; for a data set held in memory (moving_digits)
        also on the pixels of one frame (a random one per training clip), how much a single frame tells: its
        direction accuracy stays near half."""
        from .baseline import frame_baselines

        scores = frame_baselines(data.training_samples(), data.test, len(data.meta["classes"]))
        if isinstance(data.source, ClipArrays):
            from .probe import one_frame_probe

            parts = data.meta.get("label_parts", ())
            classes = len(data.meta["classes"])
            clips, labels = data.source.train
            if data.split is not None:  # the clips the network trains on: a carved validation left out
                kept = torch.as_tensor(data.split["train"])
                clips, labels = clips[kept], labels[kept]
            scores["one_frame_logreg"] = one_frame_probe((clips, labels), data.source.test, classes, parts)
        return scores

    def title(self) -> str:
        source = "transferred" if self.transferred else "scratch"
        return f"video: {self.options.head} head on a {source} frame backbone, {self.options.data}"

    def default_out(self) -> Path:
        source = "transfer" if self.transferred else "scratch"
        return Path("runs") / f"video-{self.options.head}-{source}-{self.options.data}"
