"""Image classification: a ResNet (or any registered model) with attention, on one of the task's data sets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...data.images import eval_transform, read_image
from ...layers.registry import attention_info
from ...models.identity_start import ATTENTION_INITS
from ...models.placement import PLACEMENTS
from ...models.registry import create_model, get_model_builder
from ...models.resnet import STEMS, is_attention_key
from ...models.weights import load_torchvision_weights
from ..base import Metric, Task, TaskData, check_at_least, none_if_blank, option, register_task
from ..metrics import ClassificationMetrics, TrainAccuracy
from ..top_classes import TopClassesCLI, add_top_argument, top_classes
from .data import CLASSIFY_DATA

__all__ = ["Classify", "ClassifyCLI", "ClassifyOptions"]


@dataclass
class ClassifyOptions:
    model: str = option("resnet18", "a registered model (attnlab list models)")
    attention: str | None = option("cbam", "a registered attention (attnlab list attentions), or none")
    data: str = option("mnist5k", f"the data set: {', '.join(CLASSIFY_DATA.names())}")
    data_dir: str | None = option(None, "folder of the data set (cifar*, imagefolder)")
    stem: str | None = option(None, "ResNet stem (default: the data set's; else ImageNet's)", choices=STEMS)
    image_size: int | None = option(None, "imagefolder: side of the training images (default: measured)")
    hflip: bool | None = option(None, "random horizontal flips in training (default: the data set's; off for digits)")
    label_smoothing: float = option(0.1, "label smoothing of the cross-entropy")
    # where the attention goes (models/placement.py): None = its paper's place
    placement: str | None = option(
        None, "where the attention goes in the ResNet (default: its paper's place)", choices=PLACEMENTS
    )
    stages: str | None = option(None, "the ResNet stages that get it, as digits: 4, 34, 1234 (default: the place's)")
    attention_init: str = option(
        "paper",
        "how the attention starts: its paper's initialization, or identity (the network computes what it did without "
        "the attention: for --backbone-weights)",
        choices=ATTENTION_INITS,
    )
    backbone_weights: str | None = option(
        None, "a torchvision-layout ResNet checkpoint (.pth, .safetensors) to start from; fc and attention stay at init"
    )
    backbone_lr_scale: float = option(0.1, "factor on the learning rate of the --backbone-weights tensors")

    def __post_init__(self) -> None:
        self.attention = none_if_blank(self.attention)
        self.backbone_weights = none_if_blank(self.backbone_weights)
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"--label-smoothing: expected a number in [0, 1), got {self.label_smoothing!r}")
        check_at_least(self, {"backbone_lr_scale": 0})
        self.placement, self.stages = none_if_blank(self.placement), none_if_blank(self.stages)
        if self.stages is not None:
            digits = str(self.stages)
            if not digits.isdigit() or set(digits) - set("1234") or len(set(digits)) != len(digits):
                raise ValueError(f"--stages: expected distinct digits of 1-4 (e.g. 4, 34, 1234), got {self.stages!r}")
            self.stages = "".join(sorted(digits))
        if self.attention is None and (self.placement or self.stages):
            raise ValueError("--placement, --stages: place an attention; --attention is none")

    def place(self) -> dict:
        """The keyword arguments that put the attention where ``--placement`` and ``--stages`` say."""
        out: dict = {} if self.placement is None else {"placement": self.placement}
        out = out if self.stages is None else {**out, "stages": tuple(int(d) for d in self.stages)}
        return out if self.attention_init == "paper" else {**out, "attention_init": self.attention_init}


class ClassifyCLI(TopClassesCLI):
    """predict: the top classes of each image file; visualize: attention maps and Grad-CAM."""

    @classmethod
    def add_predict_arguments(cls, parser: Any) -> None:
        add_top_argument(parser, "images")

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: list[str], args: Any) -> list[dict]:
        meta = self.task.meta
        transform = eval_transform(meta["image_size"], meta["mean"], meta["std"], resize=meta["resize"])
        rows = []
        for path in inputs:
            try:
                x = transform(read_image(path, meta["in_chans"]))
            except ValueError as e:
                rows.append({"input": path, "error": str(e)})
                continue
            rows.append({"input": path, "top": top_classes(model(x[None])[0], meta["classes"], args.top)})
        return rows

    def visualize(self, model: nn.Module, data: TaskData, out: Path, count: int, details: Callable[[], dict]) -> Path:
        from .pictures import plot_attention_grid

        meta = self.task.meta
        items = [data.test[i] for i in range(min(count, len(data.test)))]
        x = torch.stack([x for x, _ in items])
        labels = torch.tensor([y for _, y in items])
        title = self.task.title()
        return plot_attention_grid(model, x, labels, meta["classes"], meta["mean"], meta["std"], out, title)


@register_task
class Classify(Task):
    """Image classification; the recipe defaults are the default run's (ResNet18 + CBAM on mnist5k, CPU)."""

    name = "classify"
    Options = ClassifyOptions
    CLI = ClassifyCLI
    # the default run: 15 epochs of mnist5k's 3,600 training digits at batch 256 (engine.plan: any other size)
    recipe = {"samples_seen": 54_000, "base_batch": 256, "base_lr": 0.2, "optimizer": "sgd", "weight_decay": 5e-4}
    monitor = ("val_acc", "max")
    unit = "images"
    classifies = True
    # bf16 autocast: 1.24× a step on the default digits, but the default run 65 s against 70 s and 97.5 % against
    # 98.1 % test: float32 (engine.precision); --precision bf16 asks for it
    description = "image classification: ResNets with attention (default ResNet18 + CBAM on mnist5k)"
    default_vary = {"attention": ["none", "se", "eca", "cbam"]}
    options: ClassifyOptions

    def check_names(self) -> None:
        get_model_builder(self.options.model)
        if self.options.attention is not None:
            attention_info(self.options.attention)
        CLASSIFY_DATA.get(self.options.data)
        if self.options.backbone_weights and not Path(self.options.backbone_weights).is_file():
            raise FileNotFoundError(f"--backbone-weights: no file at {self.options.backbone_weights}")

    def build_data(self, *, download: bool = False) -> TaskData:
        data = CLASSIFY_DATA.build(self.options.data, self.options, download=download)
        # the data set's own stem where it has one (CIFAR's for cifar10/100, its benchmark recipe), else ImageNet's
        # at every size: on 2 CPU cores the CIFAR stem costs 7× the time at 32 px and, given the same time, ends
        # far below (docs/training.md, "Stem and input size")
        data.meta.setdefault("stem", "imagenet")
        return data

    def sample_size(self) -> tuple[float, str]:
        """Pixels against the default run's 28×28 digits (the recipe's ``samples`` are those)."""
        side = self.meta["image_size"]
        weight = (side / 28) ** 2
        return weight, f"a {side}×{side} image weighs {weight:.2g} of the recipe's 28×28 digits"

    def build_model(self) -> nn.Module:
        meta = self.meta
        return create_model(
            self.options.model,
            num_classes=len(meta["classes"]),
            attention=self.options.attention,
            stem=self.options.stem or meta["stem"],
            in_chans=meta["in_chans"],
            **self.options.place(),
        )

    def initialize(self, model: nn.Module) -> list[str]:
        """--backbone-weights: the checkpoint's tensors copied in (models/weights.py); the attention, and fc for
        another number of classes, stay at their initialization."""
        o = self.options
        lines = []
        if o.backbone_weights:
            left = load_torchvision_weights(model, o.backbone_weights)
            attention = [k for k in left if is_attention_key(k)]
            others = [k for k in left if not is_attention_key(k)]
            lines.append(
                f"backbone: {o.backbone_weights} loaded (learning rate × {o.backbone_lr_scale:g}); at init: "
                f"{len(attention)} attention tensors" + "".join(f", {k}" for k in others)
            )
        if o.attention and o.attention_init == "identity":
            lines.append(f"attention: each {o.attention} starts as the identity (α = 0): step 0 computes the backbone")
        return lines

    def lr_scale(self, name: str) -> float:
        loaded = self.options.backbone_weights and not is_attention_key(name) and not name.startswith("fc.")
        return self.options.backbone_lr_scale if loaded else 1.0

    def example_input(self, batch: int = 1) -> tuple[Tensor, ...]:
        size = self.meta["image_size"]
        return (torch.zeros(batch, self.meta["in_chans"], size, size),)

    def prepare_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        return model.to(device, memory_format=torch.channels_last)  # faster convolutions on CPU and GPU

    def to_device(self, batch: Any, device: torch.device) -> tuple[tuple[Tensor, ...], Tensor]:
        x, y = batch
        return (x.to(device, non_blocking=True, memory_format=torch.channels_last),), y.to(device, non_blocking=True)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output, target, label_smoothing=self.options.label_smoothing)

    def metric(self, *, training: bool) -> Metric:
        return TrainAccuracy() if training else ClassificationMetrics(len(self.meta["classes"]))

    def baselines(self, data: TaskData) -> dict[str, dict[str, float]]:
        """Logistic regression and an RBF SVM on the pixels (``baseline.pixel_baselines``), fitted on the images
        the network trains on, scored on the same test split."""
        from .baseline import pixel_baselines

        return pixel_baselines(data.training_samples(), data.test)

    def title(self) -> str:
        o = self.options
        return f"{o.model} + {o.attention or 'none'}{self._where()} on {o.data}"

    def _where(self) -> str:
        o = self.options
        where = [f"at {o.placement}"] if o.placement else []
        return "".join(f" {w}" for w in [*where, *([f"in stages {o.stages}"] if o.stages else [])])

    def default_out(self) -> Path:
        o = self.options
        start = o.attention_init == "identity" and "identity"
        place = "".join(f"-{v}" for v in (o.placement, o.stages and f"s{o.stages}", start) if v)
        return Path("runs") / f"{o.model}-{o.attention or 'none'}{place}-{o.data}"
