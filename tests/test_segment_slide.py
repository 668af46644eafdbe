"""Streaming segmentation of whole slides (attnlab.tasks.segment.slide): the logits of tiled_logits on the whole
image, instances without seams, objects cut past the context, the BigTIFF label image, reading TIFFs lazily, and
the normalization levels of a subsample."""

import logging

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage as ndi
from torch import nn

from attnlab.models.registry import create_model
from attnlab.models.tiling import tiled_logits
from attnlab.tasks.segment import slide, slide_read
from attnlab.tasks.segment.instances import split_instances
from attnlab.tasks.segment.microscopy import normalize_percentiles
from attnlab.tasks.segment.objects import paste
from attnlab.tasks.segment.slide import open_slide, segment_slide, slide_input, slide_levels, slide_logits

TILE, OVERLAP, BLOCK, CONTEXT, MIN_SIZE = 64, 16, 96, 48, 16


@pytest.fixture(autouse=True)
def one_thread():
    """Small convolutions on a shared machine: more threads than free cores only make them wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Threshold(nn.Module):
    """A "model" whose one logit map is its input - 0.5: the foreground is exactly the normalized input > 0.5."""

    def forward(self, x):
        return x - 0.5


def foreground(logits):
    return (logits > 0).long()[:, 0]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """The same foreground, and the same pixel sets under labels that may differ (a bijection of labels)."""
    fg = a > 0
    if not np.array_equal(fg, b > 0):
        return False
    pairs = np.unique(np.stack([a[fg], b[fg]]).astype(np.int64), axis=1)
    return pairs.shape[1] == len(np.unique(a[fg])) == len(np.unique(b[fg]))


def discs(shape, seams, rng, *, pairs=40, extra=120, equal=False):
    """A uint16 image (background 1000, discs 3000) of discs of radius 6-12 px: at every corner of the blocks, in
    touching pairs across seams, on every seam, and elsewhere, none nearer than 3 px unless paired. ``equal``: a
    pair's two discs of one radius, mirror-symmetric about their neck, where the watershed's line is decided by a
    tie between the two seeds (split_instances breaks it within the component, so a block breaks it as the whole
    image does)."""
    placed = []

    def add(y, x, r, partner=None):
        for i, (y2, x2, r2) in enumerate(placed):
            gap = np.hypot(y - y2, x - x2) - r - r2
            if (i != partner and gap < 3) or (i == partner and gap >= 0):
                return False
        placed.append((y, x, r))
        return True

    for y in seams[0]:
        for x in seams[1]:
            add(y + rng.integers(-4, 5), x + rng.integers(-4, 5), rng.integers(6, 13))  # the corners
    made = 0
    for _ in range(pairs * 20):  # touching pairs, one disc each side of a seam
        if made == pairs:
            break
        horizontal = rng.random() < 0.5
        r1 = rng.integers(6, 10)
        r2 = r1 if equal else r1 + rng.integers(1, 3)
        seam = rng.choice(seams[1] if horizontal else seams[0])
        along = rng.integers(0, shape[0] if horizontal else shape[1])
        d = r1 + r2 - 2  # overlapping by 2 px: one component, two peaks
        y, x = (along, seam - d // 2) if horizontal else (seam - d // 2, along)
        y2, x2 = (y, x + d) if horizontal else (y + d, x)
        if add(y, x, r1):
            if add(y2, x2, r2, partner=len(placed) - 1):
                made += 1
            else:
                placed.pop()
    for y in seams[0]:
        for x in range(10, shape[1], 40):
            add(y + rng.integers(-6, 7), x, rng.integers(6, 13))
    for x in seams[1]:
        for y in range(10, shape[0], 40):
            add(y, x + rng.integers(-6, 7), rng.integers(6, 13))
    for _ in range(extra):
        add(rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.integers(6, 13))
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, bool)
    for y, x, r in placed:
        mask |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    return np.where(mask, 3000, 1000).astype(np.uint16)


def reference(model, image, predict, *, min_size=MIN_SIZE):
    """split_instances of the foreground of tiled_logits on the whole image: what streaming must equal."""
    x = torch.from_numpy(normalize_percentiles(image))[None]
    with torch.no_grad():
        classes = predict(tiled_logits(model, x, TILE, OVERLAP))[0].numpy()
    return split_instances(classes > 0, min_size=min_size, h=2.0)


def stream(model, image, predict, path, *, min_size=MIN_SIZE, context=CONTEXT, on_objects=None, **kw):
    found = []
    result = segment_slide(
        model,
        image,
        predict,
        to_input=slide_input(slide_levels(image)),
        tile=TILE,
        overlap=OVERLAP,
        min_size=min_size,
        split_h=2.0,
        block=BLOCK,
        context=context,
        out=path,
        on_objects=on_objects or found.append,
        progress=False,
        **kw,
    )
    return result, found, tifffile.imread(path)


def pasted(objects, shape):
    labels = np.zeros(shape, np.uint32)
    for obj in objects:
        paste(labels, obj)
    return labels


def small_unet():
    """The task's default U-Net, small and randomly initialised, and a noise image (300, 420) for it."""
    torch.manual_seed(0)
    model = create_model("res_attention_unet", in_chans=1, num_classes=1, depth=2, width=4).eval()
    return model, np.random.default_rng(0).integers(0, 4000, (300, 420)).astype(np.uint16)


def test_logits_inside_each_block_equal_tiled_logits_on_the_whole_image():
    model, image = small_unet()
    to_input = slide_input(slide_levels(image))
    whole = tiled_logits(model, torch.from_numpy(normalize_percentiles(image))[None], TILE, OVERLAP)
    streamed = torch.full_like(whole, float("nan"))
    for r0 in range(0, 300, BLOCK):
        for c0 in range(0, 420, BLOCK):
            rows, cols = (r0, min(r0 + BLOCK, 300)), (c0, min(c0 + BLOCK, 420))
            logits = slide_logits(model, image, to_input, rows, cols, tile=TILE, overlap=OVERLAP)
            streamed[..., rows[0] : rows[1], cols[0] : cols[1]] = logits
    torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-6)
    threshold = whole.quantile(0.95)  # a random U-Net's logits are all > 0: a foreground of its top 5 %
    assert torch.equal(streamed > threshold, whole > threshold)


def test_a_unet_streamed_finds_every_object_within_the_context_as_on_the_whole_image(tmp_path):
    model, image = small_unet()
    x = torch.from_numpy(normalize_percentiles(image))[None]
    threshold = float(tiled_logits(model, x, TILE, OVERLAP).quantile(0.95))

    def predict(logits):
        return (logits > threshold).long()[:, 0]

    want = reference(model, image, predict, min_size=0)
    result, found, labels = stream(model, image, predict, tmp_path / "labels.tif", min_size=0)
    components, _ = ndi.label(want > 0, np.ones((3, 3), bool))
    small = np.zeros(want.shape, bool)  # the components that fit in the context, wherever they start
    for i, (rows, cols) in enumerate(ndi.find_objects(components), start=1):
        if rows.stop - rows.start <= CONTEXT and cols.stop - cols.start <= CONTEXT:
            small[rows, cols] |= components[rows, cols] == i
    assert small.sum() > 0.6 * (want > 0).sum() and result.cut > 0  # the rest: the image's border, in one component
    assert same_partition(np.where(small, labels, 0), np.where(small, want, 0))
    assert not (labels[want == 0]).any()  # the rest (cut objects) only where the whole image has them
    assert np.array_equal(pasted((o for block in found for o in block), labels.shape), labels)


@pytest.mark.parametrize("equal", [False, True], ids=["pairs of two sizes", "mirror-symmetric pairs"])
def test_discs_on_every_seam_and_corner_are_found_whole_once(tmp_path, equal):
    shape = (512, 640)
    seams = (list(range(BLOCK, shape[0], BLOCK)), list(range(BLOCK, shape[1], BLOCK)))
    image = discs(shape, seams, np.random.default_rng(1), equal=equal)
    want = reference(Threshold(), image, foreground)
    straddling = [
        box
        for box in ndi.find_objects(want)
        if any(box[0].start < s < box[0].stop for s in seams[0])
        or any(box[1].start < s < box[1].stop for s in seams[1])
    ]
    assert len(straddling) > 60  # the test is about them, and about touching pairs (one component, two instances)
    components, n = ndi.label(want > 0, np.ones((3, 3), bool))
    assert len(np.unique(want)) - 1 - n > 10
    result, found, labels = stream(Threshold(), image, foreground, tmp_path / "labels.tif")
    assert result.cut == 0 and result.shape == shape and result.blocks == 6 * 7
    assert result.objects == len(np.unique(want)) - 1
    assert same_partition(labels, want)
    assert labels.dtype == np.uint32 and np.array_equal(np.unique(labels), np.arange(result.objects + 1))
    objects = [o for block in found for o in block]
    assert [o.label for o in objects] == list(range(1, result.objects + 1))
    assert all(o.plane is None for o in objects)
    assert np.array_equal(pasted(objects, shape), labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif"]  # the temporary file renamed
    with tifffile.TiffFile(tmp_path / "labels.tif") as tif:
        assert tif.is_bigtiff and tif.pages[0].compression == 1


def test_an_object_larger_than_the_context_is_cut_and_warned_about(tmp_path, caplog):
    shape = (300, 300)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    image = np.where((yy - 130) ** 2 + (xx - 130) ** 2 <= 40**2, 3000, 1000).astype(np.uint16)  # 81 px > 48
    image[250:260, 20:30] = 3000  # and a small one
    tifffile.imwrite(tmp_path / "slide.tif", image, tile=(64, 64), compression="zlib")
    with caplog.at_level(logging.WARNING, logger=slide.__name__):
        result, found, labels = stream(Threshold(), open_slide(tmp_path / "slide.tif"), foreground, tmp_path / "l.tif")
    assert result.cut == 1 and result.objects == 2
    assert "--context 48" in caplog.text and "1 objects" in caplog.text
    big = next(o for block in found for o in block if o.area > 100)
    assert big.box == (slice(90, 144), slice(90, 144))  # kept within its block's core + the context
    assert np.array_equal(pasted((o for block in found for o in block), shape), labels)


def test_a_failed_run_leaves_no_file(tmp_path):
    image = discs((200, 200), ([96], [96]), np.random.default_rng(0), pairs=0, extra=10)
    calls = []

    def on_objects(objects):
        calls.append(objects)
        if len(calls) == 3:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        stream(Threshold(), image, foreground, tmp_path / "labels.tif", on_objects=on_objects)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "flag"), [({"overlap": 64}, "--overlap"), ({"block": 0}, "--block"), ({"context": -1}, "--context")]
)
def test_bad_settings_name_their_option(kwargs, flag):
    image = np.zeros((50, 50), np.uint16)
    settings = {"tile": TILE, "overlap": OVERLAP, "min_size": 0, "split_h": 2.0, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=flag):
        segment_slide(Threshold(), image, foreground, to_input=slide_input(slide_levels(image)), **settings)


def test_open_slide_reads_mapped_and_compressed_tiffs_alike(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 65535, (300, 420)).astype(np.uint16)
    rgb = rng.integers(0, 255, (130, 170, 3)).astype(np.uint8)
    for name, image in {"grey": grey, "rgb": rgb}.items():
        tifffile.imwrite(tmp_path / f"{name}.tif", image)
        tifffile.imwrite(tmp_path / f"{name}-zlib.tif", image, tile=(64, 64), compression="zlib")
        mapped, tiled = open_slide(tmp_path / f"{name}.tif"), open_slide(tmp_path / f"{name}-zlib.tif")
        assert isinstance(mapped, np.memmap) and not isinstance(tiled, np.ndarray)
        assert mapped.shape == tiled.shape == image.shape
        assert np.array_equal(mapped[:], image) and np.array_equal(tiled[:], image)
        assert np.array_equal(tiled[70:150, 33:101], image[70:150, 33:101])
        assert np.array_equal(tiled[3::7, ::5], image[3::7, ::5])


def test_open_slide_names_the_file_it_cannot_read(tmp_path):
    (tmp_path / "notes.tif").write_text("not an image")
    tifffile.imwrite(
        tmp_path / "stack.tif", np.zeros((4, 20, 30), np.uint8), photometric="minisblack", metadata={"axes": "ZYX"}
    )
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        open_slide(tmp_path / "missing.tif")
    with pytest.raises(ValueError, match="notes.tif: not a readable TIFF"):
        open_slide(tmp_path / "notes.tif")
    with pytest.raises(ValueError, match="stack.tif: axes ZYX"):
        open_slide(tmp_path / "stack.tif")


def test_slide_levels_are_the_whole_images_percentiles_when_it_is_small():
    rng = np.random.default_rng(0)
    grey = rng.gamma(2.0, 300.0, (200, 300)).astype(np.uint16)
    lo, hi = slide_levels(grey)
    x = grey.astype(np.float32)[None]
    assert np.array_equal(lo, np.percentile(x, 1.0, axis=(1, 2), keepdims=True))
    assert np.array_equal(hi, np.percentile(x, 99.8, axis=(1, 2), keepdims=True))
    assert torch.equal(slide_input((lo, hi))(grey), torch.from_numpy(normalize_percentiles(grey))[None])
    rgb = rng.integers(0, 255, (50, 60, 3)).astype(np.uint8)
    lo, hi = slide_levels(rgb)
    assert lo.shape == hi.shape == (3, 1, 1)
    assert torch.equal(
        slide_input((lo, hi))(rgb), torch.from_numpy(normalize_percentiles(np.moveaxis(rgb, -1, 0)))[None]
    )


def test_slide_levels_of_a_big_image_read_a_strided_subsample_band_by_band(monkeypatch):
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 2000, 1000)[None, :] + np.linspace(0, 1000, 900)[:, None]
    image = (ramp + rng.normal(0, 100, ramp.shape)).clip(0).astype(np.uint16)
    monkeypatch.setattr(slide_read, "_BAND_PIXELS", 25_000)  # 25 rows read at once, every 5th kept: 36 bands
    lo, hi = slide_levels(image, max_pixels=40_000)  # every 5th pixel of every 5th row: 180 × 200
    sample = image[::5, ::5].astype(np.float32)[None]
    assert np.array_equal(lo, np.percentile(sample, 1.0, axis=(1, 2), keepdims=True))
    assert np.array_equal(hi, np.percentile(sample, 99.8, axis=(1, 2), keepdims=True))
    whole = np.percentile(image.astype(np.float32), [1.0, 99.8])
    assert np.allclose([lo.item(), hi.item()], whole, atol=0.01 * (whole[1] - whole[0]))
