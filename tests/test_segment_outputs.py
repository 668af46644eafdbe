"""What ``attnlab predict`` writes for a biologist, read back with each format's own reader (roifile, json,
tifffile, csv) and checked against the label image; the inputs' axes and calibration; stacks linked along
their planes; cutoffs fitted on validation images."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from matplotlib.path import Path as MplPath

pytest.importorskip("skimage")
roifile = pytest.importorskip("roifile")
tifffile = pytest.importorskip("tifffile")

from attnlab.tasks.segment.cutoffs import DEFAULT_CUTOFFS, fit_cutoffs  # noqa: E402
from attnlab.tasks.segment.inputs import Picture, read_picture  # noqa: E402
from attnlab.tasks.segment.measure import measure_objects  # noqa: E402
from attnlab.tasks.segment.objects import objects_of, paste  # noqa: E402
from attnlab.tasks.segment.outputs import FORMATS, Segmented, parse_formats, write_outputs  # noqa: E402
from attnlab.tasks.segment.polygons import polygons, ring_area, rings  # noqa: E402
from attnlab.tasks.segment.stacks import link_planes  # noqa: E402


def raster(paths, shape) -> np.ndarray:
    """Pixels whose centre lies inside an odd number of the closed paths (x, y) (how Fiji and QuPath fill)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1)
    inside = np.zeros(h * w, bool)
    for p in paths:
        inside ^= MplPath(np.asarray(p, np.float64)).contains_points(centres)
    return inside.reshape(h, w)


def disc(shape, cy, cx, r) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def label_image() -> np.ndarray:
    """Objects of every kind an outline must survive: discs, one touching the border, a ring (a hole), two
    pixels touching only at a corner (one object of two pieces), a one-pixel object."""
    labels = np.zeros((60, 70), np.int64)
    labels[disc(labels.shape, 12, 14, 8)] = 1
    labels[disc(labels.shape, 40, 0, 9)] = 2  # cut by the left border
    ring = disc(labels.shape, 38, 40, 10) & ~disc(labels.shape, 38, 40, 4)
    labels[ring] = 3
    labels[5, 60] = labels[6, 61] = 4  # diagonal neighbours
    labels[55, 65] = 5
    labels[10:20, 45:58] = 6
    labels[12:15, 48:52] = 0  # a rectangular hole
    return labels


def test_rings_cover_every_random_mask_exactly_and_keep_pieces_apart():
    rng = np.random.default_rng(0)
    for _ in range(200):
        mask = rng.random((9, 11)) < rng.uniform(0.2, 0.8)
        assert (raster(rings(mask), mask.shape) == mask).all()
        assert sum(ring_area(r) for r in rings(mask)) == mask.sum()  # holes count negatively
    pinch = np.array([[1, 0], [0, 1]], bool)
    assert [ring_area(r) for r in rings(pinch)] == [1.0, 1.0]  # two pieces, not a self-touching ring
    assert len(polygons(pinch)) == 2
    square = np.ones((3, 3), bool)
    assert rings(square)[0].tolist() == [[0, 0], [3, 0], [3, 3], [0, 3]]  # corners only, clockwise on screen
    square[1, 1] = False
    ((outer, holes),) = polygons(square)
    assert ring_area(outer) == 9 and [ring_area(h) for h in holes] == [-1]


def test_roi_zip_reads_back_as_each_objects_exact_pixels(tmp_path):
    labels = label_image()
    picture = Picture(tmp_path / "cells.tif", labels[None, None].astype(np.uint16), None, None, False)
    result = Segmented(picture, (labels > 0)[None].astype(np.int64), labels[None], ["nucleus"], lambda c, i: c)
    path = FORMATS.get("rois")(result, tmp_path)
    rois = roifile.roiread(path)
    assert [r.name for r in rois] == [f"{k:05d}" for k in range(1, 7)]
    for k, roi in enumerate(rois, start=1):
        paths = roi.coordinates(multi=True)
        assert (raster(paths, labels.shape) == (labels == k)).all(), k
    kinds = {r.name: (r.roitype, r.composite) for r in rois}
    assert kinds["00001"] == (roifile.ROI_TYPE.TRACED, False)  # what Fiji's wand makes
    assert kinds["00003"][1] and kinds["00004"][1] and kinds["00006"][1]  # a hole, two pieces: composite
    assert rois[2].left == 30 and rois[2].top == 28 and rois[2].right == 51 and rois[2].bottom == 49


def test_geojson_polygons_cover_the_objects_and_name_their_class(tmp_path):
    labels = label_image()
    classes = (labels > 0).astype(np.int64) * 2  # everything of the second class
    picture = Picture(tmp_path / "cells.png", labels[None, None].astype(np.uint8), None, None, False)
    result = Segmented(picture, classes[None], labels[None], ["class1", "class2"], lambda c, i: c)
    collection = json.loads(FORMATS.get("geojson")(result, tmp_path).read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 6
    for k, feature in enumerate(collection["features"], start=1):
        geometry, props = feature["geometry"], feature["properties"]
        polys = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        assert all(r[0] == r[-1] for p in polys for r in p)  # closed rings, as GeoJSON asks
        assert (raster([r for p in polys for r in p], labels.shape) == (labels == k)).all(), k
        area = sum(abs(ring_area(np.array(p[0]))) - sum(abs(ring_area(np.array(h))) for h in p[1:]) for p in polys)
        assert area == (labels == k).sum()
        assert props["objectType"] == "detection" and props["classification"]["name"] == "class2"
    assert collection["features"][3]["geometry"]["type"] == "MultiPolygon"  # the two diagonal pixels
    again = json.loads(FORMATS.get("geojson")(result, tmp_path).read_text())
    assert [f["id"] for f in again["features"]] == [f["id"] for f in collection["features"]]  # stable ids


def test_measurements_equal_regionprops_on_the_whole_image_and_the_label_counts(tmp_path):
    from skimage.measure import regionprops_table

    labels = label_image()
    rng = np.random.default_rng(1)
    image = rng.integers(0, 4000, (2, *labels.shape)).astype(np.uint16)  # two channels
    rows = measure_objects(objects_of(labels), image, pixel_size=0.5)
    whole = regionprops_table(
        labels,
        intensity_image=np.moveaxis(image, 0, -1).astype(np.float64),
        properties=("label", "area", "perimeter", "centroid", "eccentricity", "solidity", "intensity_mean"),
    )
    counts = np.bincount(labels.ravel())[1:]
    assert [r["label"] for r in rows] == whole["label"].tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal([r["area_px"] for r in rows], counts)
    np.testing.assert_allclose([r["area_um2"] for r in rows], counts * 0.25)
    np.testing.assert_allclose([r["perimeter_px"] for r in rows], whole["perimeter"])
    np.testing.assert_allclose([r["centroid_x"] for r in rows], whole["centroid-1"])
    np.testing.assert_allclose([r["centroid_y"] for r in rows], whole["centroid-0"])
    np.testing.assert_allclose([r["solidity"] for r in rows], whole["solidity"])
    np.testing.assert_allclose([r["eccentricity"] for r in rows], whole["eccentricity"])
    np.testing.assert_allclose([r["mean_intensity_c1"] for r in rows], whole["intensity_mean-1"])
    k = 3
    np.testing.assert_allclose(rows[k - 1]["integrated_intensity_c0"], image[0][labels == k].sum())
    assert rows[1]["bbox_x"] == 0 and rows[1]["bbox_width"] == 10  # the disc cut by the left border


def stack_labels() -> np.ndarray:
    """Three planes: a disc drifting right, one that appears in the second plane, one that leaves."""
    planes = np.zeros((3, 40, 60), np.int64)
    for p in range(3):
        planes[p][disc((40, 60), 12, 12 + 3 * p, 6)] = 5 + p  # labels numbered per plane: anything
        if p >= 1:
            planes[p][disc((40, 60), 30, 40, 5)] = 1
        if p == 0:
            planes[p][disc((40, 60), 30, 10, 5)] = 2
    return planes


def test_stacks_keep_each_objects_label_along_the_planes():
    linked = link_planes(stack_labels(), 0.25)
    drifting = [np.unique(linked[p][12, 12 + 3 * p]).item() for p in range(3)]
    assert drifting == [drifting[0]] * 3
    newcomer = linked[1][30, 40]
    assert newcomer not in (0, drifting[0], linked[0][30, 10]) and linked[2][30, 40] == newcomer
    assert len(np.unique(linked[linked > 0])) == 3
    apart = link_planes(stack_labels(), 0.99)  # nothing overlaps that much: every plane's objects new
    assert len(np.unique(apart[apart > 0])) == 5
    with pytest.raises(ValueError, match="--stitch-threshold"):
        link_planes(stack_labels(), 0)


def test_stack_outputs_carry_their_planes(tmp_path):
    labels = link_planes(stack_labels(), 0.25)
    raw = (labels > 0).astype(np.uint16)[:, None] * 1000
    picture = Picture(tmp_path / "zs.tif", raw, "Z", 0.2, False)
    result = Segmented(picture, (labels > 0).astype(np.int64), labels, ["nucleus"], lambda c, i: (i > 0) * 255)
    written = write_outputs(result, parse_formats("labels,mask,rois,csv,outlines"), tmp_path / "out")
    with tifffile.TiffFile(written["labels"]) as tif:
        assert tif.series[0].axes == "ZYX" and tif.series[0].shape == (3, 40, 60)
        assert tif.imagej_metadata["unit"] == "um"
        np.testing.assert_array_equal(tif.asarray(), labels)
        numerator, denominator = tif.pages[0].tags["XResolution"].value
        assert numerator / denominator == pytest.approx(5)  # pixels per µm
    rois = roifile.roiread(written["rois"])
    assert len(rois) == 6 and sorted({r.position for r in rois}) == [1, 2, 3]  # two objects a plane
    assert all(r.z_position == r.position for r in rois)
    with open(written["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["plane"]) for r in rows] == [0, 0, 1, 1, 2, 2]
    assert [float(r["area_um2"]) / float(r["area_px"]) for r in rows] == pytest.approx([0.04] * 6)
    from PIL import Image
    from skimage.segmentation import find_boundaries

    for p in range(3):  # the outline pixels are the objects' edges, in yellow over the grey image
        rgb = np.asarray(Image.open(tmp_path / "out" / f"zs_outlines_z{p + 1:03d}.png"))
        yellow = (rgb == (255, 221, 0)).all(-1)
        np.testing.assert_array_equal(yellow, find_boundaries(labels[p], mode="inner"))
    assert sorted(p.name for p in (tmp_path / "out").glob("zs_outlines_z*.png")) == [
        "zs_outlines_z001.png",
        "zs_outlines_z002.png",
        "zs_outlines_z003.png",
    ]


def test_read_picture_axes_channels_and_calibration(tmp_path):
    z = np.arange(3 * 20 * 30, dtype=np.uint16).reshape(3, 20, 30)
    tifffile.imwrite(tmp_path / "z.tif", z, imagej=True, resolution=(2.0, 2.0), metadata={"unit": "um", "axes": "ZYX"})
    p = read_picture(tmp_path / "z.tif")
    assert p.plane_axis == "Z" and p.planes.shape == (3, 1, 20, 30) and p.pixel_size == pytest.approx(0.5)
    np.testing.assert_array_equal(p.planes[:, 0], z)
    assert read_picture(tmp_path / "z.tif", pixel_size=0.3).pixel_size == 0.3  # --pixel-size wins
    t = read_picture(tmp_path / "z.tif", axes="TYX")
    assert t.plane_axis == "T" and t.planes.shape == (3, 1, 20, 30)
    c = read_picture(tmp_path / "z.tif", axes="CYX", channel=2)
    assert c.plane_axis is None and c.planes.shape == (1, 1, 20, 30)
    np.testing.assert_array_equal(c.planes[0, 0], z[2])
    ome = np.stack([z[0], z[1] * 0 + 7])
    tifffile.imwrite(tmp_path / "o.ome.tif", ome, metadata={"axes": "CYX", "PhysicalSizeX": 0.25})
    o = read_picture(tmp_path / "o.ome.tif", channel=1)
    assert o.pixel_size == pytest.approx(0.25) and (o.planes == 7).all() and not o.colour
    tifffile.imwrite(tmp_path / "cm.tif", z[0], resolution=(1e4 / 0.65, 1e4 / 0.65), resolutionunit="CENTIMETER")
    assert read_picture(tmp_path / "cm.tif").pixel_size == pytest.approx(0.65)
    tifffile.imwrite(tmp_path / "dpi.tif", z[0], resolution=(72, 72), resolutionunit="INCH")
    assert read_picture(tmp_path / "dpi.tif").pixel_size is None  # a writer's default dpi is no calibration
    rgb = np.zeros((20, 30, 3), np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    r = read_picture(tmp_path / "rgb.tif")
    assert r.colour and r.planes.shape == (1, 3, 20, 30)
    with pytest.raises(ValueError, match=r"--axes: .* has 3 dimensions, 'YX' names 2"):
        read_picture(tmp_path / "z.tif", axes="YX")
    with pytest.raises(ValueError, match=r"--axes: expected the array's axes as letters"):
        read_picture(tmp_path / "z.tif", axes="ZYY")
    with pytest.raises(ValueError, match=r"--channel: .* has 3 channel\(s\) \(0-2\), got 3"):
        read_picture(tmp_path / "z.tif", axes="CYX", channel=3)
    tifffile.imwrite(tmp_path / "tz.tif", np.zeros((2, 3, 8, 8), np.uint8), imagej=True, metadata={"axes": "TZYX"})
    with pytest.raises(ValueError, match="2 stack axes"):
        read_picture(tmp_path / "tz.tif")
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    with pytest.raises(ValueError, match="bad.tif: not a readable TIFF"):
        read_picture(tmp_path / "bad.tif")
    with pytest.raises(ValueError, match="--format: unknown name 'roi'; did you mean 'rois'"):
        parse_formats("labels,roi")


def test_fitted_cutoffs_find_a_threshold_the_default_misses_and_keep_given_values():
    truth = np.zeros((48, 64), np.int64)
    for k, (cy, cx) in enumerate([(12, 12), (12, 40), (34, 20), (34, 50)], start=1):
        truth[disc(truth.shape, cy, cx, 6)] = k
    probability = np.where(truth > 0, 0.42, 0.05)  # a shy model: every nucleus under 0.5

    def foregrounds(t):
        return [probability > t]

    fitted, record = fit_cutoffs(foregrounds, [truth])
    assert fitted.threshold < 0.42 and record["val_f1_default"] == 0 and record["val_f1_fitted"] == 1
    assert fitted.min_size == DEFAULT_CUTOFFS.min_size  # nothing to gain: the default stays
    kept, record = fit_cutoffs(foregrounds, [truth], fixed={"threshold": 0.5})
    assert kept.threshold == 0.5 and record["val_f1_fitted"] == 0 and record["fixed"] == ["threshold"]
    same, _ = fit_cutoffs(lambda t: [truth > 0], [truth], thresholds=False)
    assert same == DEFAULT_CUTOFFS  # perfect with the defaults: ties keep them
    many = np.zeros((200, 200), np.int64)  # 64 nuclei, one of them a shade under 0.5
    for k in range(64):
        many[disc(many.shape, 12 + 25 * (k // 8), 12 + 25 * (k % 8), 6)] = k + 1
    shy = np.where(many > 0, np.where(many == 1, 0.45, 0.9), 0.05)
    kept, record = fit_cutoffs(lambda t: [shy > t], [many])
    assert record["best_on_validation"]["threshold"] < 0.45 and record["val_f1_fitted"] == 1
    assert kept == DEFAULT_CUTOFFS and record["kept_defaults"]  # one nucleus in 64 is within the noise
    assert record["noise"] == pytest.approx(2 / 64) and record["val_objects"] == 64


def test_objects_paste_back_into_the_label_image():
    labels = label_image()
    rebuilt = np.zeros_like(labels)
    for obj in objects_of(labels):
        paste(rebuilt, obj)
    np.testing.assert_array_equal(rebuilt, labels)
    window = np.zeros((20, 20), np.int64)
    for obj in objects_of(labels):
        paste(window, obj, top=30, left=30)  # clipped to a window of the image
    np.testing.assert_array_equal(window, labels[30:50, 30:50])
