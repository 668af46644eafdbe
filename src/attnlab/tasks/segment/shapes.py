"""Objects as the shapes Fiji and QuPath read: ImageJ ROIs (a ``.zip`` ROI set, through ``roifile``) and
QuPath's GeoJSON detections. Both trace the objects' outer pixel edges (``polygons.py``), so an ROI or a
polygon covers exactly its object's pixels.

ImageJ: an object of one piece without holes is a traced polygon (what the wand tool makes); one with holes
or of several pieces is a composite (shape) ROI whose sub-paths are its rings. In a stack, an ROI carries its
plane (ImageJ's position, z or t). GeoJSON: a ``Feature`` per object, a ``Polygon`` (outer ring, then its
holes) or a ``MultiPolygon``, pixel coordinates, ``objectType: detection`` and a ``classification``; in a
stack, the plane QuPath keeps beside the geometry.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..._files import atomic_write, atomic_write_text
from .objects import Object
from .polygons import polygons

__all__ = ["imagej_roi", "write_rois", "geojson_feature", "write_geojson", "CLASS_COLOURS"]

# QuPath's classification colours, one per class (tab10's), as 0-255 RGB
CLASS_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
_NAMESPACE = uuid.UUID("6f1c1d2e-5a4b-4c3d-9e8f-a1b2c3d4e5f6")  # deterministic feature ids: same run, same ids


def _rings_in_image(obj: Object) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """``polygons`` of the object, shifted to the image's coordinates."""
    shift = np.array([obj.left, obj.top])
    return [(outer + shift, [h + shift for h in holes]) for outer, holes in polygons(obj.mask)]


def imagej_roi(obj: Object, *, name: str, plane_axis: str | None = None):
    """The ImageJ ROI of one object (``roifile.ImagejRoi``)."""
    from roifile import ROI_TYPE, ImagejRoi

    shapes = _rings_in_image(obj)
    plane = {} if obj.plane is None else {"position": obj.plane, ("t" if plane_axis == "T" else "z"): obj.plane}
    if len(shapes) == 1 and not shapes[0][1]:
        roi = ImagejRoi.frompoints(shapes[0][0], name=name, **plane)
        roi.roitype = ROI_TYPE.TRACED
        return roi
    path = []  # MOVETO x y, LINETO x y …, CLOSE, per ring (java.awt.geom's PathIterator codes)
    for outer, holes in shapes:
        for ring in (outer, *holes):
            path += [0.0, *map(float, ring[0])]
            for x, y in ring[1:].tolist():
                path += [1.0, float(x), float(y)]
            path.append(4.0)
    roi = ImagejRoi(name=name)
    roi.roitype = ROI_TYPE.RECT
    roi.multi_coordinates = np.asarray(path, np.float32)
    roi.shape_roi_size = len(path)
    h, w = obj.mask.shape
    roi.left, roi.top, roi.right, roi.bottom = obj.left, obj.top, obj.left + w, obj.top + h
    if obj.plane is not None:
        roi.position = obj.plane + 1
    return roi


def roi_name(obj: Object) -> str:
    """Unique within a file: the label, with the plane first in a stack (a label repeats along it)."""
    return f"{obj.label:05d}" if obj.plane is None else f"{obj.plane + 1:04d}-{obj.label:05d}"


def write_rois(objects: Iterable[Object], path: Path, *, plane_axis: str | None = None) -> int:
    """An ImageJ ROI set (``.zip``) of ``objects``, written whole to a temporary name and renamed; the count."""
    from roifile import roiwrite

    rois = [imagej_roi(o, name=roi_name(o), plane_axis=plane_axis) for o in objects]
    atomic_write(path, lambda tmp: roiwrite(tmp, rois, mode="w"))  # no objects: an empty set, as Fiji opens it
    return len(rois)


def geojson_feature(obj: Object, *, class_name: str, class_index: int, image: str, plane_axis: str | None = None):
    """A QuPath detection (a GeoJSON ``Feature``) of one object; rings closed as GeoJSON asks."""
    closed = [[np.vstack([r, r[:1]]).tolist() for r in (outer, *holes)] for outer, holes in _rings_in_image(obj)]
    geometry = (
        {"type": "Polygon", "coordinates": closed[0]}
        if len(closed) == 1
        else {
            "type": "MultiPolygon",
            "coordinates": closed,
        }
    )
    if obj.plane is not None:
        geometry["plane"] = {"c": -1, "z": 0, "t": 0} | {("t" if plane_axis == "T" else "z"): obj.plane}
    key = f"{image}/{obj.plane}/{obj.label}"
    colour = CLASS_COLOURS[class_index % len(CLASS_COLOURS)]
    return {
        "type": "Feature",
        "id": str(uuid.uuid5(_NAMESPACE, key)),
        "geometry": geometry,
        "properties": {
            "objectType": "detection",
            "name": roi_name(obj),
            "classification": {"name": class_name, "color": list(colour)},
            "measurements": {"label": obj.label, "area_px": obj.area},
        },
    }


def write_geojson(features: list[dict], path: Path) -> int:
    """A GeoJSON ``FeatureCollection`` of ``features``, atomically; the count."""
    import json

    atomic_write_text(path, json.dumps({"type": "FeatureCollection", "features": features}))
    return len(features)
