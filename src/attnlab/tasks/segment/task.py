"""Cell segmentation: U-Nets with residual blocks and attention gates, robust to uneven illumination and low
contrast; foreground / background, with touching objects split into instances for the instance metrics, or
several classes (``--classes N``: masks of class indices 0…N, 0 the background).

Loss: binary cross-entropy + soft Dice (one class, one logit map), cross-entropy + soft Dice averaged over
the classes (several, N + 1 logit maps). Metrics on the held-out images, evaluated whole (overlapping tiles),
under each test condition: Dice (the F1 of pixels; with several classes its mean over them, and each class's),
IoU, pixel accuracy, and instance F1 at IoU 0.5 and its mean over the thresholds 0.5-0.95 (with several
classes: of the foreground, every class against the background). The classical baseline (Otsu's threshold
with the same clean-up and instance split; multi-Otsu for several classes) is measured on the same images and
reported beside the network. What differs between one class and several is the label scheme's (``labels.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...layers.registry import attention_info
from ...models.registry import create_model, get_model_builder
from ...models.tiling import tiled_logits
from ...models.unet import UPSAMPLES
from ..base import Metric, RunSource, Task, TaskCLI, TaskData, check_at_least, none_if_blank, option, register_task
from .data import SEGMENT_DATA, carve_strips
from .labels import LabelScheme, label_scheme
from .metrics import EvalMetrics, TrainDice
from .predict import read_input, segment_image, write_instances, write_mask

__all__ = ["Segment", "SegmentCLI", "SegmentOptions", "UNETS"]

UNETS = ("unet", "attention_unet", "res_unet", "res_attention_unet")  # models/unet.py's, compared by default


@dataclass
class SegmentOptions:
    model: str = option("res_attention_unet", f"the U-Net: {', '.join(UNETS)}")
    attention: str | None = option(None, "a zoo module inside every U-Net block (attnlab list attentions), or none")
    data: str = option("nuclei", f"the data set: {', '.join(SEGMENT_DATA.names())}")
    data_dir: str | None = option(None, "segfolder: a folder with train/ and val/, each with images/ and masks/")
    # classes: the classes besides the background (the model has 1 logit map for one, N + 1 for N > 1)
    classes: int = option(
        1,
        "classes besides the background: 1 = foreground (masks binary or instance labels); N > 1: masks of "
        "class indices 0-N (0 the background)",
    )
    width: int = option(16, "channels of the U-Net's first level (the papers: 64; 16 keeps CPU runs in minutes)")
    depth: int = option(4, "downsamplings of the U-Net (levels below the first)")
    upsample: str = option("transpose", "the U-Net's upsampling: transposed conv or bilinear", choices=UPSAMPLES)
    crop: int = option(96, "side of the random training crops, in pixels")
    samples: int = option(256, "training crops per epoch")
    tile: int = option(256, "side of the tiles whole test images (and predict's) are run in")
    overlap: int = option(32, "overlap of neighbouring tiles, in pixels (less than --tile)")
    min_size: int = option(16, "instances: objects and holes smaller than this many pixels are removed")
    split_h: float = option(2.0, "instances: depth of a distance-transform peak that seeds its own instance")

    def __post_init__(self) -> None:
        self.attention = none_if_blank(self.attention)
        check_at_least(self, {"width": 2, "depth": 1, "crop": 8, "samples": 1, "tile": 16, "min_size": 0, "classes": 1})
        if self.classes > 255:
            raise ValueError(f"--classes: expected at most 255 (masks are written as 8-bit PNGs), got {self.classes}")
        if not 0 <= self.overlap < self.tile:
            raise ValueError(f"--overlap: expected 0 <= overlap < --tile ({self.tile}), got {self.overlap}")
        if self.split_h <= 0:
            raise ValueError(f"--split-h: expected a positive number, got {self.split_h}")


class SegmentCLI(TaskCLI):
    """predict: a mask PNG (and an instance TIFF) per image; visualize: errors and gate maps per condition."""

    task: Segment

    @classmethod
    def add_predict_arguments(cls, parser: Any) -> None:
        parser.add_argument("--mask-dir", default="masks", help="folder for the mask PNGs (default masks)")
        parser.add_argument("--instances", action="store_true", help="also write instance-label TIFFs")

    def predict(self, model: nn.Module, inputs: list[str], args: Any) -> list[dict]:
        return [self._predict_file(model, name, Path(args.mask_dir), args.instances) for name in inputs]

    def _predict_file(self, model: nn.Module, name: str, out_dir: Path, instance_tiff: bool) -> dict:
        """One image file: its mask PNG in ``out_dir`` (and its instance TIFF), or the error that stopped it."""
        o, scheme, path = self.task.options, self.task.scheme, Path(name)
        try:
            x = read_input(path, self.task.meta["in_chans"])
        except ValueError as e:
            return {"input": name, "error": str(e)}
        classes, instances = segment_image(
            model, x, scheme.predict, tile=o.tile, overlap=o.overlap, min_size=o.min_size, split_h=o.split_h
        )
        mask = write_mask(scheme.mask_image(classes, instances), out_dir / f"{path.stem}_mask.png")
        row = {"input": name, "mask": str(mask), "instances": int(instances.max())}
        row["foreground"] = float((classes > 0).mean())
        if instance_tiff:
            row["labels"] = str(write_instances(instances, out_dir / f"{path.stem}_instances.tif"))
        return row

    def format_prediction(self, row: dict) -> str:
        extra = f", labels {row['labels']}" if "labels" in row else ""
        share = f"{100 * row['foreground']:.1f} % foreground"
        return f"{row['input']}: {row['instances']} objects, {share} -> {row['mask']}{extra}"

    def visualize(self, model: nn.Module, data: TaskData, out: Path, count: int, details: Callable[[], dict]) -> Path:
        from .pictures import plot_segmentation

        images, labels = data.test[0]
        o = self.task.options
        conditions = self.task.meta["conditions"][:count]
        return plot_segmentation(
            model,
            images,
            labels,
            conditions,
            predict=self.task.scheme.predict,
            tile=o.tile,
            overlap=o.overlap,
            path=out,
            title=self.task.title(),
        )

    def eval_details(self, details: dict) -> list[tuple[str, dict[str, str]]]:
        return [
            (f"{name} test images", {k: f"{v:.4f}" for k, v in scores.items()})
            for name, scores in details.get("conditions", {}).items()
        ]


@register_task
class Segment(Task):
    """Foreground segmentation with instance metrics; the default: res_attention_unet (width 16) on nuclei."""

    name = "segment"
    Options = SegmentOptions
    CLI = SegmentCLI
    # 16 epochs of --samples 256 crops: a budget in crops, whatever the size of the images
    recipe = {"samples_seen": 4096, "base_batch": 16, "base_lr": 3e-3, "optimizer": "adamw", "weight_decay": 1e-4}
    monitor = ("val_dice", "max")
    unit = "crops"
    description = "cell segmentation: U-Nets with residual blocks and attention gates (default on nuclei)"
    eval_batch_size = 1  # whole images of any size
    cpu_bf16 = True  # convolutions: bf16 autocast is 1.2-1.7× faster on CPUs with bf16 (engine.precision)
    default_vary = {"model": list(UNETS)}
    options: SegmentOptions

    def __init__(self, options: SegmentOptions, *, meta: dict | None = None, runs: RunSource | None = None) -> None:
        super().__init__(options, meta=meta, runs=runs)
        self.scheme: LabelScheme = label_scheme(options.classes)  # one class or several, decided here once

    def check_names(self) -> None:
        missing = [m for m in ("skimage", "scipy", "tifffile") if find_spec(m) is None]
        if missing:
            raise ValueError(
                f'--task segment: needs {", ".join(missing)}, not installed; pip install "attnlab[segment]"'
            )
        get_model_builder(self.options.model)
        if self.options.attention is not None:
            attention_info(self.options.attention)
        SEGMENT_DATA.get(self.options.data)

    def build_data(self, *, download: bool = False) -> TaskData:
        return SEGMENT_DATA.build(self.options.data, self.options, download=download)

    def split_validation(self, data: TaskData, fraction: float) -> TaskData:
        """Validation strips cut from the training images (``carve_strips``): random crops are no items to hold
        out."""
        data.train, data.val, note = carve_strips(data.source, fraction)
        data.meta.setdefault("notes", []).append(note)
        return data

    def build_model(self) -> nn.Module:
        o = self.options
        return create_model(
            o.model,
            in_chans=self.meta["in_chans"],
            num_classes=self.scheme.num_outputs,  # the U-Net's logit maps (the background's included when N > 1)
            depth=o.depth,
            width=o.width,
            attention=o.attention,
            upsample=o.upsample,
        )

    def example_input(self, batch: int = 1) -> tuple[Tensor, ...]:
        return (torch.zeros(batch, self.meta["in_chans"], self.options.crop, self.options.crop),)

    def forward_eval(self, model: nn.Module, inputs: tuple[Tensor, ...]) -> Tensor:
        """Whole test images (B, K, C, H, W) under their K test conditions -> logits (B, K, maps, H, W), each
        image and condition run in overlapping tiles."""
        (x,) = inputs
        o = self.options
        return torch.stack(
            [
                torch.cat([tiled_logits(model, x[b, k : k + 1], o.tile, o.overlap) for k in range(x.shape[1])])
                for b in range(x.shape[0])
            ]
        )

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return self.scheme.loss(output, target)

    def eval_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The clean condition's loss (the first), image by image (whole images differ in size and in their
        objects' share), averaged over the batch's images. ``target``: labels (B, H, W)."""
        clean = output[:, 0].float()  # (B, maps, H, W)
        classes = self.scheme.class_indices(target)
        return torch.stack([self.loss(clean[b : b + 1], classes[b : b + 1]) for b in range(len(target))]).mean()

    def metric(self, *, training: bool) -> Metric:
        if training:
            return TrainDice(self.scheme)
        o = self.options
        return EvalMetrics(self.scheme, self.meta["conditions"], min_size=o.min_size, split_h=o.split_h)

    def title(self) -> str:
        o = self.options
        extra = f" + {o.attention}" if o.attention else ""
        return f"{o.model}{extra} (width {o.width}) on {o.data}"

    def default_out(self) -> Path:
        o = self.options
        return Path("runs") / f"segment-{o.model}{'-' + o.attention if o.attention else ''}-{o.data}"

    def baselines(self, data: TaskData) -> dict[str, dict[str, float]]:
        """The scheme's classical baseline (Otsu's threshold; multi-Otsu's N thresholds for N classes, ordered by
        brightness) + the same clean-up and instance split, on the same test images and conditions."""
        conditions = data.meta["conditions"]
        metric = EvalMetrics(self.scheme, conditions, min_size=self.options.min_size, split_h=self.options.split_h)
        for i in range(len(data.test)):
            images, labels = data.test[i]  # (K, C, H, W), (H, W)
            classes, instances = self.scheme.truth(labels)
            for k in range(len(conditions)):
                pred = torch.from_numpy(self.scheme.baseline(images[k].numpy()))
                metric.add(k, pred, classes, instances)
        scalars, _ = metric.compute()
        scalars.pop("loss")
        return {self.scheme.baseline_name: {f"test_{k}": v for k, v in scalars.items()}}
