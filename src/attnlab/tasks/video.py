"""Video classification: transfer learning from images (an attnlab image run's backbone), attention over frames.

The default run: moving_digits (a digit moving left or right; 20 classes, the order of the frames decides half
of each label), the ResNet18 + CBAM of the default image run (``attnlab train``) as the frame backbone,
fine-tuned at a tenth of the learning rate, and soft attention pooling over the frames. Metrics: cross-entropy,
top-1, top-5, per-class accuracy and, on moving_digits, the digit's and the direction's accuracy. The baseline is
the ``mean`` head (order-blind); the classical reference in the same run is a logistic regression on the pixels
of one frame (the direction check: it should stay near half).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms import v2

from ..data.images import eval_transform
from ..data.video import VIDEO_DATA, build_video_data, frame_indices, read_video
from ..layers.registry import attention_info
from ..models.registry import create_model, get_model_builder
from ..models.resnet import STEMS
from ..models.video import HEADS, head_parameters
from ..models.weights import load_torchvision_weights, read_state_dict
from .base import Metric, Task, TaskData, option, register_task
from .metrics import ClassificationMetrics, TrainAccuracy
from .top_classes import TopClasses, top_classes, top_count

__all__ = ["Video", "VideoOptions", "DEFAULT_BACKBONE"]

DEFAULT_BACKBONE = "runs/resnet18-cbam-mnist5k"  # where `attnlab train` (the default image run) writes


@dataclass
class VideoOptions:
    model: str = option("video_resnet", "a registered video model")
    head: str = option("attention", "temporal head over the frames", choices=tuple(HEADS))
    backbone: str | None = option(
        DEFAULT_BACKBONE, "an attnlab image run folder whose ResNet becomes the frame backbone, or none (scratch)"
    )
    backbone_weights: str | None = option(None, "a torchvision ResNet checkpoint (.pth) for the frame backbone")
    frame_model: str | None = option(None, "the frame ResNet (default: the --backbone run's, else resnet18)")
    attention: str | None = option(None, "a zoo module in the frame ResNet (default: the --backbone run's), or none")
    stem: str | None = option(None, "ResNet stem (default: the --backbone run's, else imagenet)", choices=STEMS)
    freeze_backbone: bool = option(False, "keep the transferred backbone fixed (default: fine-tune it)")
    backbone_lr_scale: float = option(0.1, "factor on the transferred backbone's learning rate")
    data: str = option("moving_digits", "moving_digits, videofolder")
    data_dir: str | None = option(None, "videofolder: folder with train/<class>/ and val/<class>/ videos")
    num_frames: int = option(8, "frames per clip (T)")
    image_size: int | None = option(None, "videofolder: side of the frames (default 112)")
    dim: int = option(256, "width of the temporal head")
    heads: int = option(4, "transformer head: attention heads")
    depth: int = option(1, "transformer head: encoder layers")
    clusters: int = option(8, "clusters head: attention units")
    positions: bool = option(True, "learned temporal position embedding before the attention and clusters heads")
    dropout: float = option(0.1, "dropout before the classifier (and in the transformer)")

    def __post_init__(self) -> None:
        # "none" (or "") is no backbone source; for --attention it stays "none": no module, whatever the run had
        self.backbone = None if self.backbone in ("none", "") else self.backbone
        self.backbone_weights = None if self.backbone_weights in ("none", "") else self.backbone_weights
        self.attention = "none" if self.attention == "" else self.attention
        for name, value, low in (("--num-frames", self.num_frames, 1), ("--dim", self.dim, 4)):
            if value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if self.backbone_lr_scale < 0:
            raise ValueError(f"--backbone-lr-scale: expected a number >= 0, got {self.backbone_lr_scale}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout: expected a number in [0, 1), got {self.dropout}")
        if self.backbone and self.backbone_weights:
            raise ValueError("--backbone and --backbone-weights: give one source of backbone weights, not both")


def _backbone_config(options: VideoOptions) -> dict:
    """The --backbone run's config.json (model, attention, stem, data), with a clear error when it is missing."""
    folder = Path(options.backbone)
    file = folder / "config.json" if folder.is_dir() else folder.parent / "config.json"
    if not file.is_file():
        hint = (
            "; the default video run transfers the default image run's backbone: run `attnlab train` first "
            "(about 1.5 min on 2 CPU cores), or pass --backbone none to train the frame backbone from scratch"
            if options.backbone == DEFAULT_BACKBONE
            else ""
        )
        raise FileNotFoundError(f"--backbone {options.backbone}: no attnlab run folder (no {file}){hint}")
    config = json.loads(file.read_text())
    if config.get("task", "classify") != "classify" or not str(config.get("model", "")).startswith("resnet"):
        raise ValueError(
            f"--backbone {options.backbone}: expected an image classification run of a ResNet, got task "
            f"{config.get('task', 'classify')!r}, model {config.get('model')!r}"
        )
    if config.get("stem") is None:  # the data set's stem, resolved when the run started: in its checkpoint's JSON
        for name in ("best.json", "last.json"):
            if (file.parent / name).is_file():
                config["stem"] = json.loads((file.parent / name).read_text()).get("data_meta", {}).get("stem")
                break
    return config


def _architecture(options: VideoOptions) -> dict:
    """The frame ResNet: the options where given, else the --backbone run's, else resnet18, no attention,
    ImageNet's stem (as mnist5k's image runs: their 28-px digits, like moving_digits' 32-px frames)."""
    source = _backbone_config(options) if options.backbone else {}
    attention = options.attention if options.attention is not None else source.get("attention")
    return {
        "frame_model": options.frame_model or source.get("model") or "resnet18",
        "attention": None if attention in (None, "none") else attention,
        "stem": options.stem or source.get("stem") or "imagenet",
    }


class _ClipMetrics(ClassificationMetrics):
    """The classification metrics, and on moving_digits the digit's and the direction's accuracy (from the
    confusion matrix: class = digit·2 + direction)."""

    def __init__(self, num_classes: int, directions: bool) -> None:
        super().__init__(num_classes)
        self.directions = directions

    def compute(self) -> tuple[dict[str, float], dict]:
        scalars, details = super().compute()
        if self.directions:
            confusion = self.sums[3:].view(self.k, self.k)  # rows: true, columns: predicted
            n = confusion.sum().item()
            true, pred = torch.meshgrid(torch.arange(self.k), torch.arange(self.k), indexing="ij")
            scalars["digit_acc"] = confusion[true // 2 == pred // 2].sum().item() / n
            scalars["direction_acc"] = confusion[true % 2 == pred % 2].sum().item() / n
        return scalars, details


@register_task
class Video(TopClasses, Task):
    """Video classification; the default: the default image run's ResNet18 + CBAM, attention over frames."""

    name = "video"
    Options = VideoOptions
    recipe = {"epochs": 3, "batch_size": 32, "lr": 2e-3, "optimizer": "adamw", "weight_decay": 0.01}
    monitor = ("val_acc", "max")
    unit = "clips"
    description = "video classification: an image backbone transferred, attention over frames (moving_digits)"
    eval_batch_size = 64
    default_vary = {"head": list(HEADS)}

    def check_names(self, options: VideoOptions) -> None:
        get_model_builder(options.model)
        VIDEO_DATA.get(options.data)
        if options.frame_model is not None:
            get_model_builder(options.frame_model)
        if options.attention not in (None, "none"):
            attention_info(options.attention)
        if options.backbone:
            _backbone_config(options)
        if options.backbone_weights and not Path(options.backbone_weights).is_file():
            raise FileNotFoundError(f"--backbone-weights: no file at {options.backbone_weights}")

    def build_data(self, options: VideoOptions, *, download: bool = False) -> TaskData:
        d = build_video_data(
            options.data, root=options.data_dir, frames=options.num_frames, image_size=options.image_size
        )
        arch = _architecture(options)
        meta = {
            "classes": d.classes,
            "in_chans": d.in_chans,
            "image_size": d.image_size,
            "mean": list(d.mean),
            "std": list(d.std),
            "num_frames": options.num_frames,
            "directions": options.data == "moving_digits",
            "notes": d.notes,
            **arch,
        }
        return TaskData(d.train, d.test, meta, source=d)

    def build_model(self, options: VideoOptions, meta: dict) -> nn.Module:
        return create_model(
            options.model,
            num_classes=len(meta["classes"]),
            num_frames=meta["num_frames"],
            backbone=meta["frame_model"],
            attention=meta["attention"],
            stem=meta["stem"],
            in_chans=meta["in_chans"],
            head=options.head,
            dim=options.dim,
            dropout=options.dropout,
            positions=options.positions,
            freeze_backbone=options.freeze_backbone and bool(options.backbone or options.backbone_weights),
            head_kwargs={name: getattr(options, name) for name in head_parameters(options.head)},
        )

    def initialize(self, model: nn.Module, options: VideoOptions, meta: dict, read_run) -> list[str]:
        """Transfer: the backbone from an image run (--backbone) or a torchvision checkpoint (--backbone-weights)."""
        if options.backbone:
            _, state = read_run(options.backbone)
            config = _backbone_config(options)  # with the stem the run resolved
            source = f"--backbone {options.backbone}"
        elif options.backbone_weights:
            state = read_state_dict(options.backbone_weights)
            source = f"--backbone-weights {options.backbone_weights}"
        else:
            return ["frame backbone: trained from scratch (--backbone none)"]
        unused = sorted(k for k in state if k.startswith("fc."))  # the image task's classifier
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        if options.backbone and options.attention is not None and config.get("attention") != meta["attention"]:
            # --attention asks for other modules than the run's: its ResNet transfers, its modules do not
            theirs = sorted(k for k in state if k.startswith("attn.") or ".attn." in k)
            state = {k: v for k, v in state.items() if k not in set(theirs)}
            if theirs:
                unused.append(f"{len(theirs)} tensors of the run's {config.get('attention')} modules")
        target = model.backbone.state_dict()
        if options.backbone and (config.get("model"), config.get("stem")) != (meta["frame_model"], meta["stem"]):
            missing = sorted({k.rsplit(".", 1)[0] for k in target if k not in state and ".attn." not in k})
            extra = sorted({k.rsplit(".", 1)[0] for k in state if k not in target})
            raise ValueError(
                f"{source}: a {config.get('model')} ({config.get('stem')} stem) run; the frame backbone is "
                f"{meta['frame_model']} ({meta['stem']} stem): layers only in the backbone {missing[:4]}, only in the "
                f"run {extra[:4]}; drop --frame-model / --stem to take the run's"
            )
        stem_skipped = "conv1.weight" in state and state["conv1.weight"].shape != target["conv1.weight"].shape
        try:
            left = load_torchvision_weights(model.backbone, state)
        except ValueError as e:
            raise ValueError(
                f"{source}: its network differs from the frame backbone ({meta['frame_model']} + "
                f"{meta['attention'] or 'no attention'}, {meta['stem']} stem): {e}"
            ) from None
        left = [k for k in left if k not in ("fc.weight", "fc.bias")]
        loaded = len(state) - int(stem_skipped)
        lines = [f"frame backbone: {loaded} tensors loaded from {source}"]
        if left:
            lines.append(f"  left at init: {len(left)} ({', '.join(left[:6])}{', …' if len(left) > 6 else ''})")
        if unused:
            lines.append(f"  not used: {', '.join(unused)} (the image classes)")
        if model.freeze_backbone:
            lines.append("  frozen (--no-freeze-backbone fine-tunes it)")
        else:
            scale = options.backbone_lr_scale
            lines.append(f"  fine-tuned at {scale:g} × the head's learning rate (--backbone-lr-scale)")
        return lines

    def lr_scale(self, name: str, options: VideoOptions) -> float:
        transferred = options.backbone or options.backbone_weights
        return options.backbone_lr_scale if transferred and name.startswith("backbone.") else 1.0

    def example_input(self, options: VideoOptions, meta: dict, batch: int = 1) -> tuple[Tensor, ...]:
        size = meta["image_size"]
        return (torch.zeros(batch, meta["num_frames"], meta["in_chans"], size, size),)

    def loss(self, output: Tensor, target: Tensor, options: VideoOptions) -> Tensor:
        return F.cross_entropy(output, target)

    def metric(self, options: VideoOptions, meta: dict, *, training: bool) -> Metric:
        return TrainAccuracy() if training else _ClipMetrics(len(meta["classes"]), meta.get("directions", False))

    def title(self, options: VideoOptions) -> str:
        source = "scratch" if not (options.backbone or options.backbone_weights) else "transferred"
        return f"video: {options.head} head on a {source} frame backbone, {options.data}"

    def default_out(self, options: VideoOptions) -> Path:
        source = "scratch" if not (options.backbone or options.backbone_weights) else "transfer"
        return Path("runs") / f"video-{options.head}-{source}-{options.data}"

    # -- the classical reference ---------------------------------------------------------------------------------
    def baselines(self, options: VideoOptions, data: TaskData) -> dict[str, dict[str, float]]:
        """moving_digits: logistic regression on the pixels of one frame (a random one per clip): how much a
        single frame tells. Its direction accuracy should stay near half."""
        if not data.meta.get("directions"):
            return {}
        from .video_probe import one_frame_probe

        d = data.source
        return {"one_frame_logreg": one_frame_probe(d.train, d.test, len(d.classes))}

    # -- predict and see it ------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, model: nn.Module, options: VideoOptions, meta: dict, inputs: list[str], args: Any) -> list[dict]:
        top, T = top_count(args), meta["num_frames"]
        rows = []
        for path in inputs:
            try:
                video = read_video(path)
            except (ValueError, FileNotFoundError) as e:
                rows.append({"input": path, "error": str(e)})
                continue
            clip = clip_input(video[frame_indices(len(video), T)], meta)
            logits, weights = model.forward_with_frame_weights(clip[None])
            rows.append(
                {
                    "input": path,
                    "top": top_classes(logits[0], meta["classes"], top),
                    "frame_weights": [round(float(w), 4) for w in weights[0]],
                }
            )
        return rows

    def format_prediction(self, row: dict) -> str:
        weights = " ".join(f"{w:.2f}" for w in row["frame_weights"])
        return f"{super().format_prediction(row)}  frame weights {weights}"

    def prediction_fields(self, row: dict) -> dict:
        return {**super().prediction_fields(row), "frame_weights": " ".join(f"{w:.4f}" for w in row["frame_weights"])}

    def visualize(self, model: nn.Module, options: VideoOptions, meta: dict, data: TaskData, out: Path, count: int):
        from ..report.video_maps import plot_clips

        return plot_clips(model, data.test, meta, out, count, self.title(options))


def clip_input(frames: Tensor, meta: dict) -> Tensor:
    """uint8 RGB frames (T, 3, H, W) -> the run's input (T, C, S, S): the run's size and normalization; a gray
    model (moving_digits) gets the frames' luminance."""
    if meta["in_chans"] == 1:
        frames = v2.Grayscale()(frames)
    return eval_transform(meta["image_size"], meta["mean"], meta["std"])(frames)
