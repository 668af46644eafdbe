"""The per-object files of a whole slide, written block by block as ``segment_slide`` hands over each block's
objects, so none of them holds the slide: ROIs appended to the zip, GeoJSON features and CSV rows streamed to
their files (each under a temporary name, renamed when the slide is done). The label image is
``segment_slide``'s own BigTIFF; ``mask`` and ``outlines`` are images of the whole slide and are not written
for one (the label image holds both)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .files import to_chw
from .measure import EMPTY_HEADER, measure_object
from .objects import Object
from .shapes import geojson_feature, imagej_roi, roi_name

__all__ = ["SLIDE_FORMATS", "SlideFiles"]

SLIDE_FORMATS = ("labels", "rois", "geojson", "csv")  # what a slide can have


class SlideFiles:
    """The sinks of one slide; ``add(objects)`` is ``segment_slide``'s ``on_objects``; ``close()`` renames the
    finished files into place (``abort()`` removes them)."""

    def __init__(
        self, array, stem: str, folder: Path, formats: list[str], *, class_name: str, pixel_size: float | None
    ):
        self.array, self.stem, self.class_name, self.pixel_size = array, stem, class_name, pixel_size
        self.paths: dict[str, Path] = {}
        names = {"rois": f"{stem}_rois.zip", "geojson": f"{stem}.geojson", "csv": f"{stem}_objects.csv"}
        self.partial = {f: folder / (names[f] + ".partial") for f in names if f in formats}
        for path in self.partial.values():
            path.unlink(missing_ok=True)
        self.geojson = self.partial["geojson"].open("w") if "geojson" in self.partial else None
        if self.geojson is not None:
            self.geojson.write('{"type": "FeatureCollection", "features": [')
        self.csv_file = self.partial["csv"].open("w", newline="") if "csv" in self.partial else None
        self.csv_writer: csv.DictWriter | None = None
        self.rows: list[dict] = []  # kept for objects.csv across inputs (a row is ~30 numbers)
        self.features = 0
        if "rois" in self.partial:
            from roifile import roiwrite

            roiwrite(self.partial["rois"], [], mode="w")  # an empty set, appended to block by block

    def add(self, objects: list[Object]) -> None:
        if not objects:
            return
        if "rois" in self.partial:
            from roifile import roiwrite

            roiwrite(self.partial["rois"], [imagej_roi(o, name=roi_name(o)) for o in objects], mode="a")
        if self.geojson is not None:
            for obj in objects:
                feature = geojson_feature(obj, class_name=self.class_name, class_index=0, image=self.stem)
                self.geojson.write(("," if self.features else "") + json.dumps(feature))
                self.features += 1
        if self.csv_file is not None:
            rows = [self._measure(o) for o in objects]
            if self.csv_writer is None:
                self.csv_writer = csv.DictWriter(self.csv_file, fieldnames=list(rows[0]), lineterminator="\n")
                self.csv_writer.writeheader()
            self.csv_writer.writerows(rows)
            self.rows += rows

    def _measure(self, obj: Object) -> dict:
        rows, cols = obj.box
        intensity = to_chw(np.asarray(self.array[rows, cols]))  # (C, h, w), as read
        return measure_object(obj, intensity, pixel_size=self.pixel_size)

    def close(self) -> dict[str, Path]:
        if self.geojson is not None:
            self.geojson.write("]}")
            self.geojson.close()
        if self.csv_file is not None:
            if self.csv_writer is None:  # no object: the header alone
                self.csv_file.write(EMPTY_HEADER)
            self.csv_file.close()
        for name, partial in self.partial.items():
            final = partial.with_name(partial.name.removesuffix(".partial"))
            partial.replace(final)
            self.paths[name] = final
        return self.paths

    def abort(self) -> None:
        for f in (self.geojson, self.csv_file):
            if f is not None:
                f.close()
        for partial in self.partial.values():
            partial.unlink(missing_ok=True)
