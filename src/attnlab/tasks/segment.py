"""Cell segmentation: U-Nets with residual blocks and attention gates, robust to uneven illumination and low
contrast; foreground / background, with touching objects split into instances for the instance metrics.

Loss: binary cross-entropy + soft Dice. Metrics on the held-out images, evaluated whole (overlapping tiles),
under each test condition: Dice (the F1 of pixels), IoU, pixel accuracy, and instance F1 at IoU 0.5 and its
mean over the thresholds 0.5-0.95. The classical baseline (Otsu's threshold with the same clean-up and
instance split) is measured on the same images and reported beside the network.
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
from ..models.unet import UPSAMPLES
from .base import Metric, Task, TaskData, option, register_task
from .instances import THRESHOLDS, f1_scores, match_counts, otsu_foreground, split_instances

__all__ = ["Segment", "SegmentOptions", "soft_dice_loss", "pixel_counts", "instance_scores"]


@dataclass
class SegmentOptions:
    model: str = option("res_attention_unet", "unet, attention_unet, res_unet, res_attention_unet")
    attention: str | None = option(None, "a zoo module inside every U-Net block (scse, cbam, …), or none")
    data: str = option("nuclei", "nuclei, segfolder")
    data_dir: str | None = option(None, "segfolder: folder with train/ and val/, each with images/ and masks/")
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
        ):
            if value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if not 0 <= self.overlap < self.tile:
            raise ValueError(f"--overlap: expected 0 <= overlap < --tile ({self.tile}), got {self.overlap}")
        if self.split_h <= 0:
            raise ValueError(f"--split-h: expected a positive number, got {self.split_h}")


def soft_dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """1 − (2 Σ p·y + ε) / (Σ p + Σ y + ε) over the batch, p = σ(logits)."""
    p = logits.sigmoid()
    y = target.to(p.dtype)
    return 1 - (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)


def pixel_counts(pred: Tensor, target: Tensor) -> Tensor:
    """(TP, FP, FN, TN) of boolean maps, as float64."""
    pred, target = pred.bool(), target.bool()
    tp = (pred & target).sum()
    fp = (pred & ~target).sum()
    fn = (~pred & target).sum()
    return torch.stack([tp, fp, fn, target.numel() - tp - fp - fn]).double().cpu()


def instance_scores(true: np.ndarray, foreground: np.ndarray, options: SegmentOptions) -> np.ndarray:
    """(10, 3) instance TP, FP, FN at IoU 0.5 … 0.95 of a predicted foreground against true instance labels."""
    pred = split_instances(foreground, min_size=options.min_size, h=options.split_h)
    return match_counts(true, pred)


def _scalars(s: Tensor) -> dict[str, float]:
    """Scores from one condition's sums: (loss, images, TP, FP, FN, TN, instance counts (10 × 3))."""
    tp, fp, fn, tn = s[2:6].tolist()
    f1 = f1_scores(s[6:].view(len(THRESHOLDS), 3).numpy())
    return {
        "dice": 2 * tp / max(2 * tp + fp + fn, 1e-12),
        "iou": tp / max(tp + fp + fn, 1e-12),
        "acc": (tp + tn) / max(tp + fp + fn + tn, 1e-12),
        "f1": float(f1[0]),
        "f1_mean": float(f1.mean()),
    }


class _TrainDice(Metric):
    def __init__(self) -> None:
        super().__init__(4)

    def update(self, output: Tensor, target: Tensor, loss: Tensor | None) -> None:
        self.sums += pixel_counts(output.detach()[:, 0] > 0, target)  # (B, 1, h, w) logits vs (B, h, w)

    def compute(self) -> tuple[dict[str, float], dict]:
        tp, fp, fn, _ = self.sums.tolist()
        return {"dice": 2 * tp / max(2 * tp + fp + fn, 1e-12)}, {}


class _EvalMetrics(Metric):
    """Per test condition: (loss, images, TP, FP, FN, TN, then instance TP, FP, FN at 10 IoU thresholds)."""

    WIDTH = 6 + 3 * len(THRESHOLDS)

    def __init__(self, options: SegmentOptions, conditions: list[str]) -> None:
        super().__init__(self.WIDTH * len(conditions))
        self.options, self.conditions = options, conditions

    def add(self, condition: int, pred: Tensor, labels: Tensor, loss: float = 0.0) -> None:
        """One image under one condition: a boolean foreground (H, W) against instance labels (H, W)."""
        counts = instance_scores(labels.cpu().numpy(), pred.cpu().numpy(), self.options)
        row = torch.cat([torch.tensor([loss, 1.0], dtype=torch.float64), pixel_counts(pred, labels > 0)])
        start = condition * self.WIDTH
        self.sums[start : start + 6] += row
        self.sums[start + 6 : start + self.WIDTH] += torch.from_numpy(counts).flatten()

    def update(self, output: Tensor, target: Tensor, loss: Tensor | None) -> None:
        # output: (B·K, 1, H, W) logits, image-major; target: (B, H, W) instance labels
        k = len(self.conditions)
        for b in range(target.shape[0]):
            labels = target[b]
            fg = labels > 0
            for c in range(k):
                logits = output[b * k + c, 0].float()
                bce = F.binary_cross_entropy_with_logits(logits, fg.float()).item()
                self.add(c, logits > 0, labels, bce + soft_dice_loss(logits, fg).item())

    def compute(self) -> tuple[dict[str, float], dict]:
        scalars: dict[str, float] = {}
        details = {}
        for c, name in enumerate(self.conditions):
            s = self.sums[c * self.WIDTH : (c + 1) * self.WIDTH]
            scores = _scalars(s)
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
    recipe = {"epochs": 12, "batch_size": 16, "lr": 3e-3, "optimizer": "adamw", "weight_decay": 1e-4}
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
        d = build_segmentation_data(options.data, root=options.data_dir, crop=options.crop, samples=options.samples)
        meta = {"in_chans": d.in_chans, "conditions": d.conditions, "notes": d.notes, "classes": ["foreground"]}
        return TaskData(d.train, d.test, meta)

    def build_model(self, options: SegmentOptions, meta: dict) -> nn.Module:
        return create_model(
            options.model,
            in_chans=meta["in_chans"],
            num_classes=1,
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
        logits = output[:, 0]
        return F.binary_cross_entropy_with_logits(logits, target.float()) + soft_dice_loss(logits, target)

    def metric(self, options: SegmentOptions, meta: dict, *, training: bool) -> Metric:
        return _TrainDice() if training else _EvalMetrics(options, meta["conditions"])

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
        """Otsu's threshold + the same clean-up and instance split, on the same test images and conditions."""
        conditions = data.meta["conditions"]
        metric = _EvalMetrics(options, conditions)
        for i in range(len(data.test)):
            images, labels = data.test[i]
            for c in range(len(conditions)):
                metric.add(c, torch.from_numpy(otsu_foreground(images[c].numpy())), labels)
        scalars, _ = metric.compute()
        scalars.pop("loss", None)
        return {"otsu": {f"val_{k}": v for k, v in scalars.items()}}

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
            fg = (tiled_logits(model, x, options.tile, options.overlap)[0, 0] > 0).numpy()
            labels = split_instances(fg, min_size=options.min_size, h=options.split_h)
            out_dir.mkdir(parents=True, exist_ok=True)
            mask_path = out_dir / f"{Path(path).stem}_mask.png"
            Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(mask_path)
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
