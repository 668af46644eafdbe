"""The segmentation task's command-line face: ``attnlab predict`` writes the files a biologist opens (labels,
ROIs, GeoJSON, measurements, outlines: ``outputs.py``) for images, z-stacks and time-lapses; ``visualize``
draws errors and gate maps per test condition; ``eval`` prints each condition's figures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..._files import atomic_write_text
from ..base import TaskCLI, TaskData
from .files import to_chw
from .inputs import pick_channel, read_picture, tiff_header
from .microscopy import normalize_percentiles
from .outputs import DEFAULT_FORMATS, FORMATS, Segmented, csv_table, parse_formats, write_outputs
from .predict import segment_image, to_model_channels
from .stacks import link_planes

__all__ = ["SegmentCLI", "DEFAULT_FOLDER"]

DEFAULT_FOLDER = "segmented"
SLIDE_PIXELS = 4096 * 4096  # larger one-plane TIFFs are streamed block by block (``slide.py``)


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(f"--pixel-size: expected a positive size in µm, got {text}")
    return value


class SegmentCLI(TaskCLI):
    """predict: for each image its files in ``--out`` (``--format``); visualize: errors and gate maps."""

    out_folder = True

    @classmethod
    def add_predict_arguments(cls, parser: Any) -> None:
        parser.add_argument(
            "--format",
            default=",".join(DEFAULT_FORMATS),
            help=f"files to write per image, comma-separated, of: {', '.join(FORMATS.names())} "
            f"(default {','.join(DEFAULT_FORMATS)}; docs/segmentation.md says what each holds)",
        )
        parser.add_argument(
            "--axes", default=None, help="the image's axes (YX, YXC, CYX, ZYX, TYX, ZCYX …; default: the file's)"
        )
        parser.add_argument("--channel", type=int, default=None, help="the channel to segment (0-based)")
        parser.add_argument(
            "--pixel-size", type=_positive, default=None, help="µm per pixel (default: the file's calibration)"
        )
        parser.add_argument(
            "--stream",
            action="store_true",
            help=f"segment block by block in bounded memory, as images over {SLIDE_PIXELS:,} px always are",
        )
        parser.add_argument("--block", type=int, default=2048, help="whole slides: the side of a block (px)")
        parser.add_argument(
            "--context",
            type=int,
            default=128,
            help="whole slides: how far past its block an object may reach and stay whole (px, default 128)",
        )
        parser.add_argument(
            "--stitch-threshold",
            type=float,
            default=0.25,
            help="stacks: the IoU at which an object keeps the previous plane's label (default 0.25)",
        )

    def predict(self, model: nn.Module, inputs: list[str], args: Any) -> list[dict]:
        formats, folder = parse_formats(args.format), Path(args.out or DEFAULT_FOLDER)
        if folder.suffix.lower() == ".csv":
            raise ValueError(
                f"--out: a segmentation run writes its files into a folder, got the CSV name {folder} (the "
                "measurements go to <folder>/<image>_objects.csv and <folder>/objects.csv; --format csv)"
            )
        rows, tables = [], []
        for name in inputs:
            try:
                header = self._slide_header(Path(name), args)
                if header is not None:
                    row, measured = self.segment_slide(model, Path(name), header, formats, folder, args)
                    rows.append(row)
                    tables += [{"image": Path(name).name, **r} for r in measured]
                    continue
                result = self.segment_file(model, Path(name), args)
            except ValueError as e:
                rows.append({"input": name, "error": str(e)})
                continue
            written = write_outputs(result, formats, folder)
            rows.append(self._row(name, result, written))
            if "csv" in formats:
                tables += [{"image": result.picture.path.name, **r} for r in result.rows]
        if "csv" in formats and len(inputs) > 1 and tables:
            atomic_write_text(folder / "objects.csv", csv_table(tables))
            images = len({t["image"] for t in tables})
            print(f"{len(tables)} objects of {images} images measured in {folder / 'objects.csv'}")
        return rows

    def segment_file(self, model: nn.Module, path: Path, args: Any) -> Segmented:
        """One file, plane by plane, with the run's fitted cutoffs; a stack's labels linked along its planes."""
        task = self.task
        picture = read_picture(path, axes=args.axes, channel=args.channel, pixel_size=args.pixel_size)
        cutoffs, device = task.cutoffs, next(model.parameters()).device
        classes, labels = [], []
        for plane in picture.planes:
            chw = self._channels(plane, picture.path, picture.colour)
            x = torch.from_numpy(normalize_percentiles(chw))[None].to(device)
            c, i = segment_image(
                model,
                x,
                task.predict_classes,
                tile=task.options.tile,
                overlap=task.options.overlap,
                min_size=cutoffs.min_size,
                split_h=cutoffs.split_h,
            )
            classes.append(c)
            labels.append(i)
        stacked = np.stack(labels)
        if picture.stack:
            stacked = link_planes(stacked, args.stitch_threshold)
        return Segmented(picture, np.stack(classes), stacked, task.scheme.names, task.scheme.mask_image)

    @staticmethod
    def _slide_header(path: Path, args: Any) -> tuple | None:
        """``tiff_header`` of a TIFF of one plane (YX or YXS) over ``SLIDE_PIXELS``, or of any one-plane TIFF with
        ``--stream``; None for an image read whole."""
        if path.suffix.lower() not in (".tif", ".tiff") or args.axes is not None:
            return None
        header = tiff_header(path)
        if header is None or header[1] not in ("YX", "YXS"):
            return None
        h, w = header[0][:2]
        return header if args.stream or h * w > SLIDE_PIXELS else None

    def segment_slide(self, model: nn.Module, path: Path, header: tuple, formats: list[str], folder: Path, args: Any):
        """A whole slide block by block (``slide.py``), its per-object files streamed (``slide_outputs.py``):
        (the printed row, the objects' measurements)."""
        from .slide import open_slide, segment_slide, slide_input, slide_levels
        from .slide_outputs import SLIDE_FORMATS, SlideFiles

        task, cutoffs = self.task, self.task.cutoffs
        skipped = [f for f in formats if f not in SLIDE_FORMATS]
        if skipped:
            print(f"{path}: a whole slide: {', '.join(skipped)} not written (the label image holds them)")
        array = open_slide(path)
        colour = array.ndim == 3 and array.shape[-1] in (3, 4)
        pixel_size = args.pixel_size if args.pixel_size is not None else header[2]

        def channels(raw: np.ndarray) -> np.ndarray:  # a window as read -> the model's channels (C, h, w)
            chw = to_chw(raw)[:3] if colour else to_chw(raw)
            chw = pick_channel(chw[None], args.channel, str(path))[0]
            return self._channels(chw, path, colour and args.channel is None)

        folder.mkdir(parents=True, exist_ok=True)
        names = task.scheme.names
        files = SlideFiles(
            array,
            path.stem,
            folder,
            formats,
            class_name=names[0] if len(names) == 1 else "foreground",
            pixel_size=pixel_size,
        )
        labels = folder / f"{path.stem}_labels.tif" if "labels" in formats else None
        try:
            result = segment_slide(
                model,
                array,
                task.predict_classes,
                to_input=slide_input(slide_levels(array, channels=channels), channels=channels),
                tile=task.options.tile,
                overlap=task.options.overlap,
                min_size=cutoffs.min_size,
                split_h=cutoffs.split_h,
                block=args.block,
                context=args.context,
                out=labels,
                on_objects=files.add,
                progress=True,
            )
        except BaseException:
            files.abort()
            raise
        written = files.close()
        if labels is not None:
            written["labels"] = labels
        row = {"input": str(path), "objects": result.objects, "planes": 1, "foreground": None}
        row["pixel_size_um"] = pixel_size
        row["seconds"] = round(result.seconds, 1)
        return {**row, **{f: str(p) for f, p in written.items() if f in formats}}, files.rows

    def _channels(self, plane: np.ndarray, path: Path, colour: bool) -> np.ndarray:
        """A plane (C, H, W) with the model's channels: RGB averaged to grey for a one-channel model, else the
        channel ``--channel`` picks."""
        in_chans, channels = self.task.meta["in_chans"], plane.shape[0]
        if channels != in_chans and in_chans == 1 and not colour:
            raise ValueError(
                f"--channel: {path} has {channels} channels and the model segments one; pick it with "
                f"--channel (0-{channels - 1})"
            )
        return to_model_channels(plane, in_chans, path)

    @staticmethod
    def _row(name: str, result: Segmented, written: dict[str, Path]) -> dict:
        planes = len(result.labels)
        row = {"input": name, "objects": len(np.unique(result.labels[result.labels > 0]))}
        row["planes"] = planes
        row["foreground"] = float((result.classes > 0).mean())
        row["pixel_size_um"] = result.picture.pixel_size
        return {**row, **{f: str(p) for f, p in written.items()}}

    def format_prediction(self, row: dict) -> str:
        where = ", ".join(f"{k} {row[k]}" for k in FORMATS.names() if k in row)
        stack = f" in {row['planes']} planes" if row["planes"] > 1 else ""
        size = "" if row["pixel_size_um"] is None else f", {row['pixel_size_um']:.4g} µm/px"
        share = "a whole slide" if row["foreground"] is None else f"{100 * row['foreground']:.1f} % foreground"
        return f"{row['input']}: {row['objects']} objects{stack}, {share}{size}: {where}"

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
            predict=self.task.predict_classes,
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
