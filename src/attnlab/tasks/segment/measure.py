"""One row of measurements per object, through ``skimage.measure.regionprops_table``.

Each object is measured on its own crop (padded by a pixel, so the perimeter sees the background around it),
which gives the figures regionprops gives on the whole label image and lets a whole slide be measured block
by block. Positions (centroid, bounding box) are in pixels of the whole image; sizes are in pixels and, where
the pixel size is known, in µm as well: the column names carry the unit (``area_px``, ``area_um2``).
Intensities are of the input image as read (not normalized), per channel when it has several.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .objects import Object

__all__ = ["PROPERTIES", "EMPTY_HEADER", "measure_object", "measure_objects"]

EMPTY_HEADER = "label,area_px,centroid_x,centroid_y\n"  # the CSV of an image without objects: a header alone
PROPERTIES = (
    "area",
    "perimeter",
    "equivalent_diameter_area",
    "centroid",
    "bbox",
    "eccentricity",
    "solidity",
    "intensity_mean",
    "intensity_max",
)


def measure_object(
    obj: Object, intensity: np.ndarray, *, pixel_size: float | None = None, extra: dict | None = None
) -> dict:
    """The row of one object; ``intensity`` (C, h, w): the input image under the object's bounding box."""
    from skimage.measure import regionprops_table

    mask = np.pad(obj.mask, 1).astype(np.uint8)
    image = np.pad(intensity.astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    table = regionprops_table(mask, intensity_image=np.moveaxis(image, 0, -1), properties=PROPERTIES)
    v = {k: float(a[0]) for k, a in table.items()}
    top, left = obj.top - 1, obj.left - 1  # the crop's origin in the image (the pad's row and column)
    row: dict = {"label": obj.label, **(extra or {})}
    if obj.plane is not None:
        row["plane"] = obj.plane
    sizes = {"area": (v["area"], 2), "perimeter": (v["perimeter"], 1)}
    sizes["equivalent_diameter"] = (v["equivalent_diameter_area"], 1)
    for name, (value, power) in sizes.items():
        row[f"{name}_px"] = value
        if pixel_size is not None:
            row[f"{name}_um{'2' if power == 2 else ''}"] = value * pixel_size**power
    row.update(
        centroid_x=v["centroid-1"] + left,
        centroid_y=v["centroid-0"] + top,
        bbox_x=int(v["bbox-1"]) + left,
        bbox_y=int(v["bbox-0"]) + top,
        bbox_width=int(v["bbox-3"] - v["bbox-1"]),
        bbox_height=int(v["bbox-2"] - v["bbox-0"]),
        eccentricity=v["eccentricity"],
        solidity=v["solidity"],
    )
    channels = intensity.shape[0]
    for c in range(channels):
        suffix = f"_c{c}" if channels > 1 else ""
        mean = v[f"intensity_mean-{c}"]
        row[f"mean_intensity{suffix}"] = mean
        row[f"max_intensity{suffix}"] = v[f"intensity_max-{c}"]
        row[f"integrated_intensity{suffix}"] = mean * v["area"]
    return row


def measure_objects(
    objects: Iterable[Object], image: np.ndarray, *, pixel_size: float | None = None, classes: dict | None = None
) -> list[dict]:
    """Rows of ``objects`` of one image (C, H, W) (a plane of a stack: the object's own plane is used when
    ``image`` is (P, C, H, W)); ``classes``: (plane, label) -> class name, a ``class`` column when given."""
    rows = []
    for obj in objects:
        plane = image[obj.plane] if image.ndim == 4 else image
        extra = {"class": classes[obj.plane, obj.label]} if classes else None
        rows.append(measure_object(obj, plane[(slice(None), *obj.box)], pixel_size=pixel_size, extra=extra))
    return rows
