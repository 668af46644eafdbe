"""Cell segmentation: U-Nets with residual blocks and attention gates, robust to uneven illumination and low
contrast; foreground / background, with touching objects split into instances for the instance metrics, or
several classes (``--classes N``: masks of class indices 0…N, 0 the background).

Loss: binary cross-entropy + soft Dice (one class, one logit map), cross-entropy + soft Dice averaged over
the classes (several, N + 1 logit maps). Metrics on the held-out images, evaluated whole (overlapping tiles),
under each test condition: Dice (the F1 of pixels; with several classes its mean over them, and each class's),
IoU, pixel accuracy, and instance F1 at IoU 0.5 and its mean over the thresholds 0.5-0.95 (with several
classes: of the foreground, every class against the background). The classical baseline (Otsu's threshold
with the same clean-up and instance split; multi-Otsu for several classes) is measured on the same images and
reported beside the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.microscopy import normalize_percentiles
from ..data.segmentation import SEGMENTATION_DATA, build_segmentation_data, read_array
from ..layers.registry import attention_info
from ..models.registry import create_model, get_model_builder
from ..models.tiling import tiled_logits
from ..models.unet import UPSAMPLES, predicted_classes
from .base import Metric, Task, TaskData, option, register_task
from .instances import THRESHOLDS, f1_scores, match_counts, multi_otsu_classes, otsu_foreground, split_instances
from .metrics import confusion_matrix

__all__ = [
    "Segment",
    "SegmentOptions",
    "soft_dice_loss",
    "multiclass_soft_dice_loss",
    "segmentation_loss",
    "class_counts",
    "instance_scores",
]


@dataclass
class SegmentOptions:
    model: str = option("res_attention_unet", "unet, attention_unet, res_unet, res_attention_unet")
    attention: str | None = option(None, "a zoo module inside every U-Net block (scse, cbam, …), or none")
    data: str = option("nuclei", "nuclei, segfolder")
    data_dir: str | None = option(None, "segfolder: folder with train/ and val/, each with images/ and masks/")
    classes: int = option(
        1, "classes besides the background: 1 = foreground (masks binary or instances); N > 1: masks of indices 0-N"
    )
    width: int = option(16, "channels of the U-Net's first level (the papers: 64; 16 keeps CPU runs in minutes)")
    depth: int = option(4, "downsamplings of the U-Net")
    upsample: str = option("transpose", "transposed conv or bilinear upsampling", choices=UPSAMPLES)
    crop: int = option(96, "side of the random training crops")
    samples: int = option(256, "training crops per epoch")
    tile: int = option(256, "side of the tiles whole images are evaluated in")
    overlap: int = option(32, "overlap of neighbouring tiles")
    min_size: int = option(16, "instances: objects and holes smaller than this many pixels are removed")
    split_h: float = option(2.0, "instances: depth of a distance-transform peak that seeds its own instance")

    def __post_init__(self) -> None:
        if self.attention in ("none", ""):
            self.attention = None
        for name, value, low in (
            ("--width", self.width, 2),
            ("--depth", self.depth, 1),
            ("--crop", self.crop, 8),
            ("--samples", self.samples, 1),
            ("--tile", self.tile, 16),
            ("--min-size", self.min_size, 0),
            ("--classes", self.classes, 1),
        ):
            if value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if self.classes > 255:
            raise ValueError(f"--classes: expected at most 255 (masks are written as 8-bit PNGs), got {self.classes}")
        if not 0 <= self.overlap < self.tile:
            raise ValueError(f"--overlap: expected 0 <= overlap < --tile ({self.tile}), got {self.overlap}")
        if self.split_h <= 0:
            raise ValueError(f"--split-h: expected a positive number, got {self.split_h}")


def soft_dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """1 − (2 Σ p·y + ε) / (Σ p + Σ y + ε) over the batch, p = σ(logits)."""
    p = logits.sigmoid()
    y = target.to(p.dtype)
    return 1 - (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)


def multiclass_soft_dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """The mean over the classes 1…N (not the background) of 1 − (2 Σ p·y + ε) / (Σ p + Σ y + ε), p = softmax."""
    p = logits.softmax(1)[:, 1:]  # (B, N, H, W)
    y = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(p.dtype)
    dims = (0, 2, 3)
    return 1 - ((2 * (p * y).sum(dims) + eps) / (p.sum(dims) + y.sum(dims) + eps)).mean()


def segmentation_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Logits (B, K, H, W), target (B, H, W): BCE + soft Dice for one logit map, cross-entropy + the classes'
    soft Dice for several."""
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], target.to(logits.dtype)) + soft_dice_loss(
            logits[:, 0], target
        )
    return F.cross_entropy(logits, target) + multiclass_soft_dice_loss(logits, target)


def class_counts(pred: Tensor, target: Tensor, classes: int) -> Tensor:
    """Class-index maps -> (correct pixels, pixels, then TP, FP, FN of each class 1…``classes``), float64."""
    confusion = confusion_matrix(pred, target, classes + 1)
    tp = confusion.diag()[1:]
    fp, fn = confusion.sum(0)[1:] - tp, confusion.sum(1)[1:] - tp  # columns: predicted, rows: true
    head = torch.stack([confusion.diag().sum(), confusion.sum()])
    return torch.cat([head, torch.stack([tp, fp, fn], dim=1).flatten()])


def instance_scores(true: np.ndarray, foreground: np.ndarray, options: SegmentOptions) -> np.ndarray:
    """(10, 3) instance TP, FP, FN at IoU 0.5 … 0.95 of a predicted foreground against true instance labels."""
    pred = split_instances(foreground, min_size=options.min_size, h=options.split_h)
    return match_counts(true, pred)


def _class_scores(s: Tensor, names: list[str]) -> dict[str, float]:
    """Dice, IoU (means over the classes) and pixel accuracy from (correct, pixels, TP, FP, FN per class)."""
    correct, total = s[:2].tolist()
    tp, fp, fn = s[2:].view(len(names), 3).unbind(1)
    dice = 2 * tp / (2 * tp + fp + fn).clamp(min=1e-12)
    scores = {
        "dice": dice.mean().item(),
        "iou": (tp / (tp + fp + fn).clamp(min=1e-12)).mean().item(),
        "acc": correct / max(total, 1e-12),
    }
    if len(names) > 1:  # each class's Dice beside their mean
        scores.update({f"dice_{n}": d for n, d in zip(names, dice.tolist(), strict=True)})
    return scores


class _TrainDice(Metric):
    """Dice of the training crops (the mean over the classes): sums (correct, pixels, TP, FP, FN per class)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(2 + 3 * len(names))
        self.names = names

    def update(self, output: Tensor, target: Tensor, loss: Tensor | None) -> None:
        self.sums += class_counts(predicted_classes(output.detach()), target, len(self.names))

    def compute(self) -> tuple[dict[str, float], dict]:
        return {"dice": _class_scores(self.sums, self.names)["dice"]}, {}


class _EvalMetrics(Metric):
    """Per test condition: (loss, images, correct pixels, pixels, TP, FP, FN per class, then instance TP, FP, FN
    at 10 IoU thresholds)."""

    def __init__(self, options: SegmentOptions, conditions: list[str], names: list[str]) -> None:
        self.width = 4 + 3 * len(names) + 3 * len(THRESHOLDS)
        super().__init__(self.width * len(conditions))
        self.options, self.conditions, self.names = options, conditions, names

    def truth(self, labels: Tensor) -> tuple[Tensor, Tensor]:
        """(class indices, instance labels) of a test image's labels: instance labels with one class; class
        indices with several, whose instances are the connected regions of the foreground."""
        if len(self.names) == 1:
            return (labels > 0).long(), labels
        from skimage.measure import label

        return labels, torch.from_numpy(label(labels.cpu().numpy() > 0, connectivity=1).astype(np.int64))

    def add(self, condition: int, pred: Tensor, labels: Tensor, loss: float = 0.0) -> None:
        """One image under one condition: predicted class indices (H, W) against its labels (H, W)."""
        self._add(condition, pred, *self.truth(labels), loss)

    def _add(self, condition: int, pred: Tensor, classes: Tensor, instances: Tensor, loss: float) -> None:
        pixels = class_counts(pred.cpu(), classes.cpu(), len(self.names))  # (2 + 3·classes,)
        objects = instance_scores(instances.cpu().numpy(), (pred > 0).cpu().numpy(), self.options)  # (10, 3)
        row = torch.cat([torch.tensor([loss, 1.0], dtype=torch.float64), pixels, torch.from_numpy(objects).flatten()])
        self.sums[condition * self.width : (condition + 1) * self.width] += row

    def update(self, output: Tensor, target: Tensor, loss: Tensor | None) -> None:
        # output: (B·K, classes, H, W) logits, image-major, K test conditions; target: (B, H, W) labels
        k = len(self.conditions)
        for b in range(target.shape[0]):
            classes, instances = self.truth(target[b])
            for c in range(k):
                logits = output[b * k + c : b * k + c + 1].float()
                loss = segmentation_loss(logits, classes[None]).item()
                self._add(c, predicted_classes(logits)[0], classes, instances, loss)

    def compute(self) -> tuple[dict[str, float], dict]:
        scalars: dict[str, float] = {}
        details = {}
        pixels = 4 + 3 * len(self.names)
        for c, name in enumerate(self.conditions):
            s = self.sums[c * self.width : (c + 1) * self.width]
            f1 = f1_scores(s[pixels:].view(len(THRESHOLDS), 3).numpy())
            scores = {**_class_scores(s[2:pixels], self.names), "f1": float(f1[0]), "f1_mean": float(f1.mean())}
            details[name] = scores
            if c == 0:  # the clean images: the run's main figures
                scalars = {"loss": s[0].item() / max(s[1].item(), 1), **scores}
            else:
                scalars.update({f"dice_{name}": scores["dice"], f"f1_{name}": scores["f1"]})
        return scalars, {"conditions": details}


@register_task
class Segment(Task):
    """Foreground segmentation with instance metrics; the default: res_attention_unet (width 16) on nuclei."""

    name = "segment"
    Options = SegmentOptions
    recipe = {"epochs": 16, "batch_size": 16, "lr": 3e-3, "optimizer": "adamw", "weight_decay": 1e-4}
    monitor = ("val_dice", "max")
    unit = "crops"
    description = "cell segmentation: U-Nets with residual blocks and attention gates (default on nuclei)"
    eval_batch_size = 1  # whole images of any size
    default_vary = {"model": ["unet", "attention_unet", "res_unet", "res_attention_unet"]}

    def check_names(self, options: SegmentOptions) -> None:
        missing = [m for m in ("skimage", "scipy", "tifffile") if find_spec(m) is None]
        if missing:
            raise ValueError(
                f'--task segment: needs {", ".join(missing)}, not installed; pip install "attnlab[segment]"'
            )
        get_model_builder(options.model)
        if options.attention is not None:
            attention_info(options.attention)
        SEGMENTATION_DATA.get(options.data)

    def build_data(self, options: SegmentOptions, *, download: bool = False) -> TaskData:
        d = build_segmentation_data(
            options.data, root=options.data_dir, crop=options.crop, samples=options.samples, classes=options.classes
        )
        names = ["foreground"] if options.classes == 1 else [f"class{k}" for k in range(1, options.classes + 1)]
        meta = {"in_chans": d.in_chans, "conditions": d.conditions, "notes": d.notes, "classes": names}
        return TaskData(d.train, d.test, meta)

    def build_model(self, options: SegmentOptions, meta: dict) -> nn.Module:
        return create_model(
            options.model,
            in_chans=meta["in_chans"],
            num_classes=1 if len(meta["classes"]) == 1 else len(meta["classes"]) + 1,  # + the background's map
            depth=options.depth,
            width=options.width,
            attention=options.attention,
            upsample=options.upsample,
        )

    def example_input(self, options: SegmentOptions, meta: dict, batch: int = 1) -> tuple[Tensor, ...]:
        return (torch.zeros(batch, meta["in_chans"], options.crop, options.crop),)

    def to_device(self, batch: Any, device: torch.device) -> tuple[tuple[Tensor, ...], Tensor]:
        x, y = batch
        return (x.to(device, non_blocking=True),), y.to(device, non_blocking=True)

    def forward(
        self, model: nn.Module, inputs: tuple[Tensor, ...], options: SegmentOptions, *, training: bool
    ) -> Tensor:
        x = inputs[0]
        if x.dim() == 4:  # training crops (B, C, h, w)
            return model(x)
        # whole test images (B, K, C, H, W), every condition: tiles -> (B·K, 1, H, W)
        b, k = x.shape[:2]
        tiles = [
            tiled_logits(model, x[i, c : c + 1], options.tile, options.overlap) for i in range(b) for c in range(k)
        ]
        return torch.cat(tiles)

    def loss(self, output: Tensor, target: Tensor, options: SegmentOptions) -> Tensor:
        return segmentation_loss(output, target)

    def metric(self, options: SegmentOptions, meta: dict, *, training: bool) -> Metric:
        names = meta["classes"]
        return _TrainDice(names) if training else _EvalMetrics(options, meta["conditions"], names)

    def title(self, options: SegmentOptions) -> str:
        extra = f" + {options.attention}" if options.attention else ""
        return f"{options.model}{extra} (width {options.width}) on {options.data}"

    def default_out(self, options: SegmentOptions) -> Path:
        return (
            Path("runs")
            / f"segment-{options.model}{'-' + options.attention if options.attention else ''}-{options.data}"
        )

    # -- the classical baseline ---------------------------------------------------------------------------------
    def baselines(self, options: SegmentOptions, data: TaskData) -> dict[str, dict[str, float]]:
        """Otsu's threshold (multi-Otsu's N thresholds for N classes, ordered by brightness) + the same clean-up
        and instance split, on the same test images and conditions."""
        conditions, names = data.meta["conditions"], data.meta["classes"]
        metric = _EvalMetrics(options, conditions, names)
        for i in range(len(data.test)):
            images, labels = data.test[i]
            for c in range(len(conditions)):
                image = images[c].numpy()
                pred = (
                    otsu_foreground(image).astype(np.int64)
                    if len(names) == 1
                    else multi_otsu_classes(image, len(names))
                )
                metric.add(c, torch.from_numpy(pred), labels)
        scalars, _ = metric.compute()
        scalars.pop("loss", None)
        return {"otsu" if len(names) == 1 else "multi_otsu": {f"val_{k}": v for k, v in scalars.items()}}

    # -- predict and see it -------------------------------------------------------------------------------------
    def add_predict_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--mask-dir", default="masks", help="segmentation: folder for the mask PNGs (default masks)"
        )
        parser.add_argument("--instances", action="store_true", help="segmentation: also write instance-label TIFFs")

    @torch.no_grad()
    def predict(
        self, model: nn.Module, options: SegmentOptions, meta: dict, inputs: list[str], args: Any
    ) -> list[dict]:
        from PIL import Image

        out_dir = Path(getattr(args, "mask_dir", "masks"))
        rows = []
        for path in inputs:
            try:
                raw = read_array(Path(path))
            except ValueError as e:
                rows.append({"input": path, "error": str(e)})
                continue
            chw = raw[None] if raw.ndim == 2 else np.moveaxis(raw, -1, 0)
            if chw.shape[0] != meta["in_chans"]:
                channels = chw.shape[0]
                chw = (
                    chw.mean(axis=0, keepdims=True)
                    if meta["in_chans"] == 1
                    else np.repeat(chw[:1], meta["in_chans"], 0)
                )
                if channels != 1 and meta["in_chans"] != 1:
                    rows.append(
                        {"input": path, "error": f"{path}: {channels} channels, the model takes {meta['in_chans']}"}
                    )
                    continue
            x = torch.from_numpy(normalize_percentiles(chw))[None]
            classes = predicted_classes(tiled_logits(model, x, options.tile, options.overlap))[0].numpy()
            fg = classes > 0
            labels = split_instances(fg, min_size=options.min_size, h=options.split_h)
            out_dir.mkdir(parents=True, exist_ok=True)
            mask_path = out_dir / f"{Path(path).stem}_mask.png"
            # one class: the cleaned foreground as 0/255; several: each pixel's class index 0…N
            mask = (labels > 0) * 255 if len(meta["classes"]) == 1 else classes
            Image.fromarray(mask.astype(np.uint8)).save(mask_path)
            row = {
                "input": path,
                "mask": str(mask_path),
                "instances": int(labels.max()),
                "foreground": float(fg.mean()),
            }
            if getattr(args, "instances", False):
                import tifffile

                label_path = out_dir / f"{Path(path).stem}_instances.tif"
                tifffile.imwrite(label_path, labels.astype(np.uint16 if labels.max() < 65536 else np.uint32))
                row["labels"] = str(label_path)
            rows.append(row)
        return rows

    def format_prediction(self, row: dict) -> str:
        extra = f", labels {row['labels']}" if "labels" in row else ""
        share = f"{100 * row['foreground']:.1f} % foreground"
        return f"{row['input']}: {row['instances']} objects, {share} -> {row['mask']}{extra}"

    def visualize(self, model: nn.Module, options: SegmentOptions, meta: dict, data: TaskData, out: Path, count: int):
        from ..report.segmentation import plot_segmentation

        images, labels = data.test[0]
        return plot_segmentation(model, images, labels, meta["conditions"][:count], options, out, self.title(options))

    def eval_details(self, details: dict, meta: dict) -> list[tuple[str, dict[str, str]]]:
        tables = []
        for name, scores in details.get("conditions", {}).items():
            tables.append((f"{name} test images", {k: f"{v:.4f}" for k, v in scores.items()}))
        return tables
