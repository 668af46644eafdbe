"""The files ``attnlab predict`` writes for a segmented image, by name (``--format``): each format a writer of
its own, registered here; ``--format labels,rois,csv`` picks them.

    labels    {stem}_labels.tif   instance labels, 16-bit (32-bit from 65,536 objects), calibrated in µm when
                                  the pixel size is known; a stack stays a stack (ZYX or TYX)
    mask      {stem}_mask.png     the mask as 0/255 (one class) or class indices (several); a stack: .tif
    rois      {stem}_rois.zip     an ImageJ/Fiji ROI set, one traced polygon per object (``shapes.py``)
    geojson   {stem}.geojson      QuPath detections with their classification (``shapes.py``)
    csv       {stem}_objects.csv  one row per object (``measure.py``); ``objects.csv`` gathers every image's
    outlines  {stem}_outlines.png the objects' outlines over the image (one PNG per plane of a stack)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..._files import atomic_write, atomic_write_text
from ..._names import Registry
from .inputs import Picture
from .measure import EMPTY_HEADER, measure_objects
from .objects import Object, objects_of
from .shapes import CLASS_COLOURS, geojson_feature, write_geojson, write_rois

__all__ = ["Segmented", "FORMATS", "DEFAULT_FORMATS", "parse_formats", "write_outputs", "csv_table"]


@dataclass
class Segmented:
    """One input file segmented: ``classes`` and ``labels`` (P, H, W), the class indices and the instance
    labels of each plane (labels linked along a stack), ``names`` the classes besides the background."""

    picture: Picture
    classes: np.ndarray
    labels: np.ndarray
    names: list[str]
    mask_image: Callable[[np.ndarray, np.ndarray], np.ndarray]  # the label scheme's (classes, labels) -> mask
    written: dict[str, Path] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return self.picture.path.stem

    @cached_property
    def objects(self) -> list[Object]:
        return [o for p, plane in enumerate(self.labels) for o in objects_of(plane, plane=p if self.stacked else None)]

    @property
    def stacked(self) -> bool:
        return self.picture.stack

    @cached_property
    def object_classes(self) -> dict[tuple[int | None, int], int]:
        """(plane, label) -> the object's class, 1…N: the most common among its pixels."""
        found = {}
        for obj in self.objects:
            classes = self.classes[obj.plane or 0][obj.box][obj.mask]
            found[obj.plane, obj.label] = int(np.bincount(classes, minlength=2)[1:].argmax()) + 1
        return found

    @cached_property
    def rows(self) -> list[dict]:
        names = {key: self.names[k - 1] for key, k in self.object_classes.items()}
        planes = self.picture.planes if self.stacked else self.picture.planes[0]
        return measure_objects(
            self.objects, planes, pixel_size=self.picture.pixel_size, classes=names if len(self.names) > 1 else None
        )


FORMATS: Registry[Callable[[Segmented, Path], Path]] = Registry("--format", "attnlab predict --help")
DEFAULT_FORMATS = ("mask", "labels", "rois", "csv")


def parse_formats(text: str) -> list[str]:
    """``labels,rois,csv`` -> the names, each known (errors list the formats)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--format: expected one or more of {', '.join(FORMATS.names())}, got {text!r}")
    for name in names:
        FORMATS.get(name)
    return list(dict.fromkeys(names))


def write_outputs(result: Segmented, formats: list[str], folder: Path) -> dict[str, Path]:
    """Every format's file for one input in ``folder`` (made when missing): format -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in formats:
        result.written[name] = FORMATS.get(name)(result, folder)
    return result.written


def _tiff_calibration(picture: Picture, axes: str, imagej: bool) -> dict:
    """tifffile.imwrite's keywords that carry the pixel size (µm) and the axes into Fiji."""
    if picture.pixel_size is None:
        return {"imagej": True, "metadata": {"axes": axes}} if imagej else {}
    per_micron = 1.0 / picture.pixel_size
    if imagej:
        return {"imagej": True, "resolution": (per_micron, per_micron), "metadata": {"axes": axes, "unit": "um"}}
    return {"resolution": (per_micron * 1e4, per_micron * 1e4), "resolutionunit": "CENTIMETER"}


def _write_tiff(array: np.ndarray, picture: Picture, path: Path) -> Path:
    """(P, H, W) as a 2-D TIFF or a stack; ImageJ's format (calibrated, axes named) for 8 and 16 bits, which
    is all it holds; a plain TIFF with the resolution in centimetres for 32 bits."""
    import tifffile

    data = array if picture.stack else array[0]
    axes = f"{picture.plane_axis}YX" if picture.stack else "YX"
    imagej = data.dtype in (np.uint8, np.uint16)
    return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, data, **_tiff_calibration(picture, axes, imagej)))


@FORMATS.register("labels")
def labels_tiff(result: Segmented, folder: Path) -> Path:
    labels = result.labels
    dtype = np.uint16 if labels.max() < 65536 else np.uint32
    return _write_tiff(labels.astype(dtype), result.picture, folder / f"{result.stem}_labels.tif")


@FORMATS.register("mask")
def mask_image(result: Segmented, folder: Path) -> Path:
    masks = np.stack([result.mask_image(c, i) for c, i in zip(result.classes, result.labels, strict=True)])
    masks = masks.astype(np.uint8)
    if result.stacked:
        return _write_tiff(masks, result.picture, folder / f"{result.stem}_mask.tif")
    from PIL import Image

    return atomic_write(folder / f"{result.stem}_mask.png", lambda tmp: Image.fromarray(masks[0]).save(tmp, "PNG"))


@FORMATS.register("rois")
def rois_zip(result: Segmented, folder: Path) -> Path:
    path = folder / f"{result.stem}_rois.zip"
    write_rois(result.objects, path, plane_axis=result.picture.plane_axis)
    return path


@FORMATS.register("geojson")
def geojson(result: Segmented, folder: Path) -> Path:
    features = []
    for obj in result.objects:
        k = result.object_classes[obj.plane, obj.label]
        features.append(
            geojson_feature(
                obj,
                class_name=result.names[k - 1],
                class_index=k - 1,
                image=result.picture.path.name,
                plane_axis=result.picture.plane_axis,
            )
        )
    path = folder / f"{result.stem}.geojson"
    write_geojson(features, path)
    return path


def csv_table(rows: list[dict]) -> str:
    """CSV text of ``rows`` with the union of their columns, in order of first appearance."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@FORMATS.register("csv")
def objects_csv(result: Segmented, folder: Path) -> Path:
    path = folder / f"{result.stem}_objects.csv"
    atomic_write_text(path, csv_table(result.rows) if result.rows else EMPTY_HEADER)
    return path


def _display(plane: np.ndarray, colour: bool) -> np.ndarray:
    """A plane (C, H, W) as 8-bit RGB (H, W, 3), each channel stretched between its 1st and 99.8th
    percentiles."""
    from .microscopy import normalize_percentiles

    x = normalize_percentiles(plane)
    x = x[:3] if colour else x.mean(0, keepdims=True).repeat(3, 0)
    return (np.clip(x, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


@FORMATS.register("outlines")
def outlines_png(result: Segmented, folder: Path) -> Path:
    from PIL import Image
    from skimage.segmentation import find_boundaries

    palette = np.array([(255, 221, 0)] + CLASS_COLOURS, np.uint8)  # one class: yellow; several: their colours
    first = None
    planes = zip(result.picture.planes, result.labels, result.classes, strict=True)
    for p, (plane, labels, classes) in enumerate(planes):
        rgb = _display(plane, result.picture.colour)
        edge = find_boundaries(labels, mode="inner")
        rgb[edge] = palette[0] if len(result.names) == 1 else palette[1:][(classes[edge] - 1) % len(CLASS_COLOURS)]
        suffix = f"_{result.picture.plane_axis.lower()}{p + 1:03d}" if result.stacked else ""
        image = Image.fromarray(rgb)
        path = atomic_write(folder / f"{result.stem}_outlines{suffix}.png", lambda tmp, im=image: im.save(tmp, "PNG"))
        first = first or path
    return first
