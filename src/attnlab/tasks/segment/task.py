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

from dataclasses import dataclass, replace
from importlib.util import find_spec
from pathlib import Path

import torch
from torch import Tensor, nn

from ...layers.registry import attention_info
from ...models.registry import create_model, get_model_builder
from ...models.tiling import tiled_logits
from ...models.unet import UPSAMPLES
from ..base import Metric, RunSource, Task, TaskData, check_at_least, none_if_blank, option, register_task
from .cli import SegmentCLI
from .cutoffs import DEFAULT_CUTOFFS, Cutoffs, fit_cutoffs
from .data import SEGMENT_DATA, carve_strips
from .labels import LabelScheme, label_scheme
from .metrics import EvalMetrics, TrainDice

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
    # None: fitted on the validation images after training (cutoffs.py), from the defaults 0.5, 16 and 2
    threshold: float | None = option(
        None, "the foreground probability (one class; default: fitted on the validation images after training)"
    )
    min_size: int | None = option(
        None, "instances: objects and holes smaller than this many pixels are removed (default: fitted)"
    )
    split_h: float | None = option(
        None, "instances: depth of a distance-transform peak that seeds its own instance (default: fitted)"
    )

    def __post_init__(self) -> None:
        self.attention = none_if_blank(self.attention)
        least = {"width": 2, "depth": 1, "crop": 8, "samples": 1, "tile": 16, "classes": 1}
        check_at_least(self, least if self.min_size is None else {**least, "min_size": 0})
        if self.classes > 255:
            raise ValueError(f"--classes: expected at most 255 (masks are written as 8-bit PNGs), got {self.classes}")
        if not 0 <= self.overlap < self.tile:
            raise ValueError(f"--overlap: expected 0 <= overlap < --tile ({self.tile}), got {self.overlap}")
        if self.split_h is not None and self.split_h <= 0:
            raise ValueError(f"--split-h: expected a positive number, got {self.split_h}")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ValueError(f"--threshold: expected a probability between 0 and 1, got {self.threshold}")

    def given_cutoffs(self) -> dict:
        """The cutoffs the user fixed (the others are fitted)."""
        names = ("threshold", "min_size", "split_h")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


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
        c = self.cutoffs
        return EvalMetrics(
            self.scheme, self.meta["conditions"], min_size=c.min_size, split_h=c.split_h, threshold=c.threshold
        )

    @property
    def cutoffs(self) -> Cutoffs:
        """The threshold, minimum size and split depth in use: those the user gave, else the ones fitted after
        training (the run's meta), else the defaults (during training)."""
        fitted = (self.saved_meta or {}).get("fitted", {}).get("cutoffs", {})
        return replace(DEFAULT_CUTOFFS, **{**fitted, **self.options.given_cutoffs()})

    def predict_classes(self, logits: Tensor) -> Tensor:
        """Logits (B, maps, H, W) -> class indices (B, H, W) at the threshold in use."""
        return self.scheme.predict(logits, self.cutoffs.threshold)

    def fit_after_training(self, model: nn.Module, data: TaskData, device: torch.device) -> dict:
        """The cutoffs with the best instance F1 at IoU 0.5 on the validation images (clean condition), with the
        best weights; those the user gave stay fixed (``cutoffs.py``)."""
        o = self.options
        model.eval()
        probabilities, truths = [], []
        with torch.no_grad():
            for i in range(len(data.val)):
                images, labels = data.val[i]  # (K, C, H, W), (H, W)
                logits = tiled_logits(model, images[:1].to(device), o.tile, o.overlap).float().cpu()
                probabilities.append(self.scheme.foreground_probability(logits)[0].numpy())
                truths.append(self.scheme.instances(labels).numpy())
        several = self.scheme.classes > 1  # the argmax decides the foreground: no threshold to fit

        def foregrounds(threshold: float) -> list:
            return [p > (0.5 if several else threshold) for p in probabilities]

        fitted, record = fit_cutoffs(foregrounds, truths, fixed=o.given_cutoffs(), thresholds=not several)
        b = record["best_on_validation"]
        found = (
            f"threshold {b['threshold']:g}, min size {b['min_size']}, split depth {b['split_h']:g}: instance "
            f"F1@0.5 {record['val_f1_default']:.3f} -> {record['val_f1_fitted']:.3f} on {record['val_objects']} "
            f"validation objects in {len(truths)} image{'s' * (len(truths) != 1)}"
        )
        verdict = (
            f"kept the defaults (a gain under {record['noise']:.3f}, two standard errors, is noise)"
            if record["kept_defaults"]
            else f"using them (threshold {fitted.threshold:g}, min size {fitted.min_size}, split {fitted.split_h:g})"
        )
        return {"fitted": record, "lines": [f"cutoffs: best on validation {found}; {verdict}"]}

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
        conditions, c = data.meta["conditions"], self.baseline_cutoffs(data)
        metric = EvalMetrics(self.scheme, conditions, min_size=c.min_size, split_h=c.split_h)
        for i in range(len(data.test)):
            images, labels = data.test[i]  # (K, C, H, W), (H, W)
            classes, instances = self.scheme.truth(labels)
            for k in range(len(conditions)):
                pred = torch.from_numpy(self.scheme.baseline(images[k].numpy()))
                metric.add(k, pred, classes, instances)
        scalars, _ = metric.compute()
        scalars.pop("loss")
        if "fitted" in self.meta:  # the summary's record of what was fitted on validation
            self.meta["fitted"]["baseline_cutoffs"] = {"min_size": c.min_size, "split_h": c.split_h}
        return {self.scheme.baseline_name: {f"test_{k}": v for k, v in scalars.items()}}

    def baseline_cutoffs(self, data: TaskData) -> Cutoffs:
        """The baseline's clean-up fitted on the same validation images as the network's (its own threshold is
        Otsu's): as seriously tuned, on the same split."""
        images = [data.val[i] for i in range(len(data.val))]
        truths = [self.scheme.instances(labels).numpy() for _, labels in images]
        masks = [self.scheme.baseline(x[0].numpy()) > 0 for x, _ in images]
        fitted, _ = fit_cutoffs(lambda t: masks, truths, fixed=self.options.given_cutoffs(), thresholds=False)
        return fitted
