"""Image classification: a ResNet (or any registered model) with attention, on a registered image data set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms import v2

from ..data.images import eval_transform, read_image
from ..data.registry import DATASETS, build_dataset
from ..layers.registry import attention_info
from ..models.registry import create_model, get_model_builder
from ..models.resnet import STEMS
from .base import Metric, Task, TaskData, option, register_task
from .metrics import ClassificationMetrics, TrainAccuracy
from .top_classes import TopClasses, top_classes, top_count

__all__ = ["Classify", "ClassifyOptions"]

# The stem a data set trains with unless --stem says otherwise. mnist5k: ImageNet's, whose 28×28 digits reach
# layer1 at 7×7, 16× cheaper than the CIFAR stem: the default run stays within minutes on 2 CPU cores.
# Others: CIFAR's for images up to 64 px (keeps their resolution), ImageNet's above.
DATA_STEMS = {"mnist5k": "imagenet"}


@dataclass
class ClassifyOptions:
    model: str = option("resnet18", "a registered model (attnlab list models)")
    attention: str | None = option("cbam", "a registered attention (attnlab list attentions), or none")
    data: str = option("mnist5k", "mnist5k, cifar10, cifar100, imagefolder")
    data_dir: str | None = option(None, "folder of the data set (cifar*, imagefolder)")
    stem: str | None = option(None, "ResNet stem (default: the data's; CIFAR's up to 64 px)", choices=STEMS)
    image_size: int | None = option(None, "imagefolder: side of the training images (default: measured)")
    hflip: bool | None = option(None, "random horizontal flips in training (default: the data set's; off for digits)")
    label_smoothing: float = option(0.1, "label smoothing of the cross-entropy")

    def __post_init__(self) -> None:
        if self.attention in ("none", ""):
            self.attention = None
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"--label-smoothing: expected a number in [0, 1), got {self.label_smoothing!r}")


@register_task
class Classify(TopClasses, Task):
    """Image classification; the recipe defaults are the default run's (ResNet18 + CBAM on mnist5k, CPU)."""

    name = "classify"
    Options = ClassifyOptions
    recipe = {"epochs": 15, "batch_size": 256, "lr": 0.2, "optimizer": "sgd", "weight_decay": 5e-4}
    monitor = ("val_acc", "max")
    unit = "images"
    description = "image classification: ResNets with attention (default ResNet18 + CBAM on mnist5k)"
    default_vary = {"attention": ["none", "se", "eca", "cbam"]}

    def check_names(self, options: ClassifyOptions) -> None:
        get_model_builder(options.model)
        if options.attention is not None:
            attention_info(options.attention)
        DATASETS.get(options.data)

    def build_data(self, options: ClassifyOptions, *, download: bool = False) -> TaskData:
        d = build_dataset(
            options.data, root=options.data_dir, download=download, image_size=options.image_size, hflip=options.hflip
        )
        stem = DATA_STEMS.get(d.name) or ("cifar" if d.image_size <= 64 else "imagenet")
        meta = {
            "classes": d.classes,
            "in_chans": d.in_chans,
            "image_size": d.image_size,
            "resize": d.resize or d.image_size,
            "mean": list(d.mean),
            "std": list(d.std),
            "stem": stem,
            "notes": d.notes,
        }
        return TaskData(d.train, d.test, meta)

    def build_model(self, options: ClassifyOptions, meta: dict) -> nn.Module:
        return create_model(
            options.model,
            num_classes=len(meta["classes"]),
            attention=options.attention,
            stem=options.stem or meta["stem"],
            in_chans=meta["in_chans"],
        )

    def example_input(self, options: ClassifyOptions, meta: dict, batch: int = 1) -> tuple[Tensor, ...]:
        return (torch.zeros(batch, meta["in_chans"], meta["image_size"], meta["image_size"]),)

    def prepare_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        return model.to(device, memory_format=torch.channels_last)  # faster convolutions on CPU and GPU

    def to_device(self, batch: Any, device: torch.device) -> tuple[tuple[Tensor, ...], Tensor]:
        x, y = batch
        return (x.to(device, non_blocking=True, memory_format=torch.channels_last),), y.to(device, non_blocking=True)

    def loss(self, output: Tensor, target: Tensor, options: ClassifyOptions) -> Tensor:
        return F.cross_entropy(output, target, label_smoothing=options.label_smoothing)

    def metric(self, options: ClassifyOptions, meta: dict, *, training: bool) -> Metric:
        return TrainAccuracy() if training else ClassificationMetrics(len(meta["classes"]))

    def title(self, options: ClassifyOptions) -> str:
        return f"{options.model} + {options.attention or 'none'} on {options.data}"

    def default_out(self, options: ClassifyOptions) -> Path:
        return Path("runs") / f"{options.model}-{options.attention or 'none'}-{options.data}"

    # -- predict ----------------------------------------------------------------------------------------------
    def add_predict_arguments(self, parser: Any) -> None:
        parser.add_argument("--top", type=int, default=3, help="images and videos: classes shown per input (default 3)")

    @staticmethod
    def eval_transform(meta: dict) -> v2.Compose:
        """The run's evaluation transform, from its saved meta: resize, center crop, normalize."""
        return eval_transform(meta["image_size"], meta["mean"], meta["std"], resize=meta["resize"])

    @torch.no_grad()
    def predict(
        self, model: nn.Module, options: ClassifyOptions, meta: dict, inputs: list[str], args: Any
    ) -> list[dict]:
        top = top_count(args)
        transform = self.eval_transform(meta)
        rows = []
        for path in inputs:
            try:
                x = transform(read_image(path, meta["in_chans"]))
            except ValueError as e:
                rows.append({"input": path, "error": str(e)})
                continue
            rows.append({"input": path, "top": top_classes(model(x[None])[0], meta["classes"], top)})
        return rows

    # -- see it -----------------------------------------------------------------------------------------------
    def visualize(self, model: nn.Module, options: ClassifyOptions, meta: dict, data: TaskData, out: Path, count: int):
        from ..report.visualize import plot_attention_grid

        items = [data.test[i] for i in range(min(count, len(data.test)))]
        x = torch.stack([x for x, _ in items])
        labels = torch.tensor([y for _, y in items])
        title = self.title(options)
        return plot_attention_grid(model, x, labels, meta["classes"], meta["mean"], meta["std"], out, title)
