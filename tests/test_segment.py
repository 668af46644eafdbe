"""Segmentation: the attention gate against its equation, U-Net sizes and parameter counts, instances and
their matching on hand examples and against StarDist's, the pixel metrics by hand, tiles, nuclei's disjoint
split, segfolder's refusals, and the task end to end."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import attnlab
from attnlab.cli import main
from attnlab.layers.attention_gate import AttentionGate
from attnlab.models.tiling import tile_starts, tiled_logits
from attnlab.report.maps import capture_gates
from attnlab.tasks.segment import SEGMENT_DATA, SegmentOptions, label_scheme
from attnlab.tasks.segment.data import NUCLEI_SPLIT_COLUMN
from attnlab.tasks.segment.files import read_mask
from attnlab.tasks.segment.instances import THRESHOLDS, f1_scores, match_counts, split_instances
from attnlab.tasks.segment.losses import multiclass_soft_dice_loss, soft_dice_loss
from attnlab.tasks.segment.metrics import EvalMetrics, class_counts, class_scores

F64 = torch.float64
UNETS = ["unet", "attention_unet", "res_unet", "res_attention_unet"]


def build_data(name, **options):
    """The segment data set ``name`` for these options (the task's defaults otherwise)."""
    return SEGMENT_DATA.build(name, SegmentOptions(data=name, **options))


def test_attention_gate_is_its_equation_by_hand():
    torch.manual_seed(0)
    gate = AttentionGate(4, 6, inter_channels=3).to(F64).eval()
    for p in gate.parameters():  # non-trivial BN statistics too
        p.data.normal_()
    gate.out[1].running_mean.normal_()
    gate.out[1].running_var.uniform_(0.5, 2)
    x, g = torch.randn(2, 4, 6, 8, dtype=F64), torch.randn(2, 6, 3, 4, dtype=F64)
    # W_x: 2×2 stride-2 conv as a sum over each 2×2 block; W_g, ψ: 1×1 convs as matrix products
    blocks = x.unfold(2, 2, 2).unfold(3, 2, 2)  # (B, C, 3, 4, 2, 2)
    theta = torch.einsum("bchwij,fcij->bfhw", blocks, gate.theta.weight)
    phi = torch.einsum("bchw,fc->bfhw", g, gate.phi.weight[:, :, 0, 0]) + gate.phi.bias[:, None, None]
    q = torch.einsum("bfhw,f->bhw", torch.relu(theta + phi), gate.psi.weight[0, :, 0, 0]) + gate.psi.bias
    alpha = F.interpolate(torch.sigmoid(q)[:, None], size=(6, 8), mode="bilinear")  # resampled to x's grid
    y = torch.einsum("bchw,dc->bdhw", x * alpha, gate.out[0].weight[:, :, 0, 0]) + gate.out[0].bias[:, None, None]
    bn = gate.out[1]
    expected = (y - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
    expected = expected * bn.weight[:, None, None] + bn.bias[:, None, None]
    with capture_gates(gate) as maps:
        out = gate(x, g)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(maps["gate"], alpha)
    c, cg, f = 4, 6, 3
    assert sum(p.numel() for p in gate.parameters()) == 4 * c * f + cg * f + f + f + 1 + c * c + c + 2 * c


@pytest.mark.parametrize("name", UNETS)
def test_unets_keep_odd_sizes_and_gates_are_alphas_of_the_skips_size(name):
    torch.manual_seed(0)
    model = attnlab.create_model(name, width=4, depth=3, attention="scse", in_chans=2, num_classes=3).eval()
    x = torch.randn(1, 2, 37, 50)
    with torch.no_grad(), capture_gates(model) as maps:
        out = model(x)
    assert out.shape == (1, 3, 37, 50)
    gates = {k: v for k, v in maps.items() if k.startswith("skip_gates")}
    assert len(gates) == (3 if "attention" in name else 0)
    for k, alpha in gates.items():
        level = int(k.split(".")[1])  # the skip of level i is padded 40×56 / 2^i
        assert alpha.shape == (1, 1, 40 // 2**level, 56 // 2**level)
        assert alpha.min() > 0 and alpha.max() < 1
    assert any(k.endswith("attn.gate") or ".attn." in k for k in maps)  # scSE's own gates in the blocks


# Parameter counts (1 input channel, 1 output map), written in docs/segmentation.md.
COUNTS = {
    ("unet", 64): 31_036_481,
    ("attention_unet", 64): 32_432_965,
    ("res_unet", 64): 32_435_073,
    ("res_attention_unet", 64): 33_831_557,
    ("unet", 16): 1_942_289,
    ("attention_unet", 16): 2_030_293,
    ("res_unet", 16): 2_030_817,
    ("res_attention_unet", 16): 2_118_821,
}


@pytest.mark.parametrize(("name", "width"), list(COUNTS))
def test_parameter_counts(name, width):
    model = attnlab.create_model(name, width=width)
    assert sum(p.numel() for p in model.parameters()) == COUNTS[name, width]


def test_plain_unet_count_is_the_papers_layers():
    # two 3×3 convs (no bias) + BN per level, 2×2 transposed convs (with bias), 1×1 head
    w = [64 * 2**i for i in range(5)]
    convs = sum(9 * cin * c + 2 * c + 9 * c * c + 2 * c for cin, c in zip([1, *w[:-1]], w, strict=True))
    up = sum(4 * w[i + 1] * w[i] + w[i] for i in range(4))
    dec = sum(9 * 2 * w[i] * w[i] + 2 * w[i] + 9 * w[i] * w[i] + 2 * w[i] for i in range(4))
    assert convs + up + dec + w[0] + 1 == COUNTS["unet", 64]


def disk(shape, centre, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= r * r


def test_touching_nuclei_are_split_and_matched():
    a, b = disk((40, 60), (20, 20), 9), disk((40, 60), (20, 36), 9)  # two disks touching in a narrow neck
    true = np.zeros((40, 60), np.int64)
    true[a], true[b & ~a] = 1, 2
    labels = split_instances(a | b, min_size=4, h=1.0)
    assert labels.max() == 2
    counts = match_counts(true, labels)
    assert counts[0].tolist() == [2, 0, 0]  # at IoU 0.5 both found
    merged = (a | b).astype(np.int64)
    counts = match_counts(true, merged)  # one blob for two nuclei: IoU ≈ 0.5 with each, one match at most
    assert counts[0, 0] <= 1 and counts[0, 2] >= 1 and counts[-1].tolist() == [0, 1, 2]
    assert f1_scores(np.array([[2, 0, 0]]))[0] == 1.0 and f1_scores(np.array([[1, 1, 1]]))[0] == 0.5


def test_small_objects_and_holes_are_cleaned_up():
    fg = disk((30, 30), (15, 15), 8)
    fg[15, 15] = False  # a one-pixel hole
    fg[1, 1] = True  # a one-pixel speck
    labels = split_instances(fg, min_size=4, h=2.0)
    assert labels.max() == 1 and labels[15, 15] == 1 and labels[1, 1] == 0


def test_tiles_cover_the_image_and_blend_to_the_whole_pass():
    assert tile_starts(100, 40, 8) == [0, 32, 60] and tile_starts(30, 40, 8) == [0]
    model = torch.nn.Conv2d(1, 2, 1).double()  # no spatial context: tiles must give the same logits
    x = torch.randn(1, 1, 70, 90, dtype=F64)
    torch.testing.assert_close(tiled_logits(model, x, 32, 8), model(x))


def test_nuclei_train_and_test_never_share_a_pixel():
    d = build_data("nuclei", crop=64, samples=4)
    train_image = d.train.images[0]
    images, labels = d.test[0]
    assert train_image.shape[-1] == NUCLEI_SPLIT_COLUMN and images.shape[-1] == 512 - NUCLEI_SPLIT_COLUMN
    assert images.shape[:2] == (3, 1) and labels.max() > 50  # three conditions; more than 50 nuclei reach in
    assert len(np.unique(labels.numpy())) - 1 >= 50
    assert d.meta["conditions"] == ["clean", "gradient", "low_contrast"] and d.meta["classes"] == ["foreground"]
    x, y = d.train[0]
    assert x.shape == (1, 64, 64) and set(torch.unique(y).tolist()) <= {0, 1}


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".tif":
        import tifffile

        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)


def make_segfolder(root, n=2, size=48):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(n):
            mask = np.zeros((size, size), np.uint8)
            for _ in range(4):
                cy, cx = rng.integers(8, size - 8, 2)
                mask[disk((size, size), (cy, cx), 5)] = 255
            image = (rng.normal(30, 5, (size, size)) + (mask > 0) * 120).clip(0, 255).astype(np.uint16) * 200
            write(root / split / "images" / f"img{i}.tif", image)  # 16-bit TIFF images
            write(root / split / "masks" / f"img{i}.png", mask)  # 8-bit binary PNG masks


def test_segfolder_trains_on_every_channel_of_a_cyx_tiff_and_reads_rgb_however_stored(tmp_path, capsys):
    import tifffile

    from attnlab.tasks.segment.files import read_array

    root = tmp_path / "data"
    make_segfolder(root)
    for tif in root.glob("*/images/*.tif"):  # a second channel beside the nuclei, as Fiji saves it: CYX
        nuclei = tifffile.imread(tif)
        tifffile.imwrite(tif, np.stack([nuclei, nuclei[::-1] // 2]), imagej=True, metadata={"axes": "CYX"})
    d = build_data("segfolder", data_dir=str(root), crop=32, samples=4)
    assert d.meta["in_chans"] == 2
    first = read_array(root / "val" / "images" / "img0.tif")
    assert first.shape == (48, 48, 2) and np.array_equal(first[..., 1], first[::-1, :, 0] // 2)
    out = tmp_path / "run"
    args = ["train", "--task", "segment", "--data", "segfolder", "--data-dir", str(root), "--epochs", "1"]
    assert main([*args, "--crop", "32", "--samples", "4", "--width", "4", "--out", str(out)]) == 0
    predicted = tmp_path / "segmented"  # not predict's default folder, which is the working directory's
    image = str(root / "val" / "images" / "img0.tif")
    assert main(["predict", "--checkpoint", str(out), image, "--out", str(predicted)]) == 0
    assert (predicted / "img0_labels.tif").is_file()
    rgb = np.random.default_rng(1).integers(0, 255, (20, 24, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    assert np.array_equal(read_array(tmp_path / "planar.tif"), rgb)  # RGB stored plane by plane (SYX)
    Image.fromarray(rgb[..., 0]).convert("LA").save(tmp_path / "gray_alpha.png")
    assert np.array_equal(read_array(tmp_path / "gray_alpha.png"), rgb[..., 0])  # alpha dropped: gray
    tifffile.imwrite(tmp_path / "z.tif", np.zeros((3, 20, 24), np.uint16), imagej=True, metadata={"axes": "ZYX"})
    with pytest.raises(ValueError, match=r"z.tif: a stack of shape \(3, 20, 24\) \(axes ZYX\)"):
        read_array(tmp_path / "z.tif")


def test_segfolder_refuses_bad_input_naming_the_file(tmp_path, capsys):
    root = tmp_path / "data"
    make_segfolder(root)
    d = build_data("segfolder", data_dir=str(root), crop=32, samples=4)
    assert d.meta["in_chans"] == 1 and len(d.test) == 2
    bad = tmp_path / "bad"
    make_segfolder(bad)
    write(bad / "train" / "masks" / "img0.png", np.array([[0, 128, 255]] * 48, np.uint8)[:, :48].repeat(16, 1)[:, :48])
    with pytest.raises(ValueError, match=r"img0.png: an 8-bit mask with values \[0, 128, 255\]"):
        build_data("segfolder", data_dir=str(bad))
    write(bad / "train" / "masks" / "img0.png", np.zeros((40, 48), np.uint8))
    with pytest.raises(ValueError, match=r"img0.png: the mask is 40×48, its image img0.tif is 48×48"):
        build_data("segfolder", data_dir=str(bad))
    (bad / "train" / "masks" / "img0.png").unlink()
    with pytest.raises(ValueError, match=r"img0.tif: no mask with the same name"):
        build_data("segfolder", data_dir=str(bad))
    stack = tmp_path / "stack"
    make_segfolder(stack)
    write(stack / "val" / "images" / "img1.tif", np.zeros((5, 48, 48), np.uint16))
    with pytest.raises(ValueError, match=r"img1.tif: a stack of shape \(5, 48, 48\)"):
        build_data("segfolder", data_dir=str(stack))
    with pytest.raises(ValueError, match=r"smaller than one training crop \(96×96\); pass --crop 48"):
        build_data("segfolder", data_dir=str(root), crop=96)
    empty = tmp_path / "empty"
    for split in ("train", "val"):
        (empty / split / "images").mkdir(parents=True)
        (empty / split / "masks").mkdir(parents=True)
    assert (
        main(
            [
                "train",
                "--task",
                "segment",
                "--data",
                "segfolder",
                "--data-dir",
                str(empty),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "holds no image" in capsys.readouterr().err


def test_instance_masks_are_read_as_labels(tmp_path):
    labels = np.zeros((10, 10), np.uint16)
    labels[1:4, 1:4], labels[4:7, 1:4] = 3, 7  # touching instances stay apart
    write(tmp_path / "m.tif", labels)
    assert sorted(np.unique(read_mask(tmp_path / "m.tif")).tolist()) == [0, 3, 7]


def small_segment_run(root, make_data, *extra):
    """Train a width-4, depth-2 U-Net for 2 short epochs on a segfolder written by ``make_data``: (root, run)."""
    make_data(root / "data")
    out = root / "run"
    args = ["--task", "segment", "--data", "segfolder", "--data-dir", str(root / "data"), "--width", "4"]
    small = ["--depth", "2", "--crop", "32", "--samples", "16", "--epochs", "2", "--batch-size", "8", "--tile", "32"]
    assert main(["train", *args, *small, "--overlap", "8", *extra, "--out", str(out)]) == 0
    return root, out


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    return small_segment_run(tmp_path_factory.mktemp("seg"), make_segfolder, "--model", "res_attention_unet")


def test_segment_run_folder_and_baseline(seg_run):
    _, out = seg_run
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert summary["monitor"] == "val_dice" and [r["epoch"] for r in records] == [1, 2]
    keys = {"val_loss", "val_dice", "val_iou", "val_acc", "val_f1", "val_f1_mean", "train_dice", "crops_per_s"}
    assert keys <= set(records[-1])
    best = max(records, key=lambda r: r["val_dice"])  # the first of equals, as the best checkpoint keeps it
    assert summary["val_metrics"] == {k: v for k, v in best.items() if k.startswith("val_")}
    assert summary["best_val_dice"] == best["val_dice"]
    otsu = summary["baselines"]["otsu"]
    assert otsu["test_dice"] > 0.9  # bright disks on a dark background: Otsu's easy case
    assert set(otsu) == {k for k in summary["test_metrics"] if k != "test_loss"}
    fitted = summary["fitted"]  # the cutoffs chosen on the validation strips, saved with the best checkpoint
    assert set(fitted["cutoffs"]) == {"threshold", "min_size", "split_h"} and fitted["tried"] > 60
    assert fitted["val_f1_fitted"] >= fitted["val_f1_default"] and set(fitted["baseline_cutoffs"]) == {
        "min_size",
        "split_h",
    }
    from attnlab.engine.run_folder import load_run

    assert load_run(out).task.cutoffs.to_dict() == fitted["cutoffs"]  # what eval and predict use
    # attnlab eval of the best checkpoint gives the run's test figures again, the clean condition's in its details
    assert main(["eval", "--checkpoint", str(out)]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["metrics"] == pytest.approx(summary["test_metrics"])
    clean = result["details"]["conditions"]["clean"]
    assert clean == pytest.approx(
        {k: summary["test_metrics"][f"test_{k}"] for k in ("dice", "iou", "acc", "f1", "f1_mean")}
    )


def test_segment_predict_writes_masks_of_the_images_size(seg_run, tmp_path, capsys):
    root, out = seg_run
    image = root / "data" / "val" / "images" / "img0.tif"
    odd = tmp_path / "odd.png"
    Image.fromarray(np.full((37, 53), 40, np.uint8)).save(odd)
    args = ["predict", "--checkpoint", str(out), str(image), str(odd), "--out", str(tmp_path / "m")]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "objects" in lines[-2] and "measured in" in lines[0]
    mask = np.asarray(Image.open(tmp_path / "m" / "odd_mask.png"))
    assert mask.shape == (37, 53) and set(np.unique(mask).tolist()) <= {0, 255}
    import tifffile

    assert tifffile.imread(tmp_path / "m" / "img0_labels.tif").shape == (48, 48)
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"img0_rois.zip", "img0_objects.csv", "odd_objects.csv"}


def test_segment_predict_on_a_stack_writes_every_format(seg_run, tmp_path, capsys):
    import tifffile

    root, out = seg_run
    image = tifffile.imread(root / "data" / "val" / "images" / "img0.tif")
    stack = np.stack([np.roll(image, 2 * k, axis=1) for k in range(3)])  # a nucleus drifting right
    path = tmp_path / "drift.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(4.0, 4.0), metadata={"axes": "TYX", "unit": "um"})
    args = ["predict", "--checkpoint", str(out), str(path), "--out", str(tmp_path / "o"), "--format"]
    assert main([*args, "labels,rois,geojson,csv,outlines,mask"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "in 3 planes" in line and "0.25 µm/px" in line
    with tifffile.TiffFile(tmp_path / "o" / "drift_labels.tif") as tif:
        assert tif.series[0].axes == "TYX" and tif.series[0].shape == (3, 48, 48)
        labels = tif.asarray()
    import roifile

    rois = roifile.roiread(tmp_path / "o" / "drift_rois.zip") if labels.any() else []
    assert len(rois) == sum(len(np.unique(p[p > 0])) for p in labels)
    assert all(r.t_position == r.position for r in rois)
    assert len(json.loads((tmp_path / "o" / "drift.geojson").read_text())["features"]) == len(rois)
    assert len(list((tmp_path / "o").glob("drift_outlines_t*.png"))) == 3
    assert tifffile.imread(tmp_path / "o" / "drift_mask.tif").shape == (3, 48, 48)
    assert main([*args, "rois", "--channel", "1"]) == 2  # one channel only: a clear error, nothing written
    assert "--channel: " in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(out), str(path), "--out", str(tmp_path / "p.csv")]) == 2
    assert "--out: a segmentation run writes its files into a folder" in capsys.readouterr().err


class Threshold(torch.nn.Module):
    """A stand-in U-Net whose foreground is the bright half of its (normalized) input: objects known exactly."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(8.0))

    def forward(self, x):
        return self.scale * (x - 0.5)


def test_segment_predict_streams_a_slide_to_the_same_objects(seg_run, tmp_path, capsys):
    """``--stream`` (what a slide over 4096² px gets) finds the objects the whole-image path finds, block by
    block, and writes the same files but the whole-slide images."""
    import argparse

    import roifile
    import tifffile

    from attnlab.engine.run_folder import load_run

    root, out = seg_run
    tile = np.asarray(tifffile.imread(root / "data" / "val" / "images" / "img0.tif"))
    slide = np.tile(tile, (3, 4))  # 144 × 192: blocks of 72 (3 steps of the run's 32-px tiles)
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, slide, resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")
    cli, model = load_run(out).cli, Threshold()
    formats = "labels,rois,csv,geojson,outlines"
    options = {"axes": None, "channel": None, "pixel_size": None, "stitch_threshold": 0.25, "format": formats}
    for name, stream in (("whole", False), ("stream", True)):
        args = argparse.Namespace(**options, out=str(tmp_path / name), stream=stream, block=64, context=40)
        (row,) = cli.predict(model, [str(path)], args)
        assert row["objects"] > 20 and row["pixel_size_um"] == pytest.approx(0.5)
    assert "a whole slide: outlines not written" in capsys.readouterr().out
    whole = tifffile.imread(tmp_path / "whole" / "slide_labels.tif").astype(np.int64)
    streamed = tifffile.imread(tmp_path / "stream" / "slide_labels.tif").astype(np.int64)
    pairs = np.unique(np.stack([whole.ravel(), streamed.ravel()]), axis=1)  # the same partition, other numbers
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1] == whole.max() + 1
    assert len(roifile.roiread(tmp_path / "stream" / "slide_rois.zip")) == streamed.max()
    rows = (tmp_path / "stream" / "slide_objects.csv").read_text().splitlines()
    assert len(rows) - 1 == streamed.max() and "area_um2" in rows[0]
    whole_rows = (tmp_path / "whole" / "slide_objects.csv").read_text().splitlines()
    area = rows[0].split(",").index("area_px")
    assert sorted(float(r.split(",")[area]) for r in rows[1:]) == sorted(
        float(r.split(",")[area]) for r in whole_rows[1:]
    )
    features = json.loads((tmp_path / "stream" / "slide.geojson").read_text())["features"]
    assert len(features) == streamed.max()


def test_segment_visualize_and_export(seg_run, tmp_path, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    _, out = seg_run
    from attnlab.tasks.segment import pictures

    drawn = {}
    monkeypatch.setattr(pictures, "save_figure", lambda fig, path: drawn.setdefault("fig", fig))
    assert main(["visualize", "--checkpoint", str(out), "--out", str(tmp_path / "v.png")]) == 0
    titles = [ax.get_title() for ax in drawn["fig"].axes if ax.get_visible()]
    assert titles[0] == "clean" and "Dice" in titles[1]
    assert [t.split("\n")[0] for t in titles[2:]] == ["skip_gates.1", "skip_gates.0"]  # one α per level
    onnx = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(out), "--format", "onnx", "--out", str(onnx)]) == 0
    from attnlab.engine.run_folder import load_run

    run = load_run(out)
    x = torch.randn(3, 1, 32, 32)
    got = ort.InferenceSession(str(onnx)).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, run.model(x).numpy(), rtol=1e-4, atol=1e-4)


# ---- several classes -----------------------------------------------------------------------------------------
def test_class_counts_and_the_multiclass_dice_loss_by_hand():
    true = torch.tensor([[0, 1, 1], [2, 2, 0]])
    pred = torch.tensor([[0, 1, 2], [2, 0, 0]])
    # correct 4 of 6; class 1: TP 1, FP 0, FN 1; class 2: TP 1, FP 1, FN 1
    assert class_counts(pred, true, 2).tolist() == [4, 6, 1, 0, 1, 1, 1, 1]
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, dtype=F64)
    target = torch.randint(0, 3, (2, 4, 5))
    p = logits.softmax(1)
    dices = []
    for k in (1, 2):
        y = (target == k).double()
        dices.append((2 * (p[:, k] * y).sum() + 1) / (p[:, k].sum() + y.sum() + 1))
    torch.testing.assert_close(multiclass_soft_dice_loss(logits, target), 1 - (dices[0] + dices[1]) / 2)
    several = label_scheme(2)
    assert several.num_outputs == 3 and several.names == ["class1", "class2"]
    torch.testing.assert_close(
        several.loss(logits, target), F.cross_entropy(logits, target) + multiclass_soft_dice_loss(logits, target)
    )
    one = logits[:, :1]  # one logit map: BCE + the binary soft Dice
    fg = target > 0
    expected = F.binary_cross_entropy_with_logits(one[:, 0], fg.double()) + soft_dice_loss(one[:, 0], fg)
    binary = label_scheme(1)
    assert binary.num_outputs == 1 and binary.names == ["foreground"]
    torch.testing.assert_close(binary.loss(one, fg.long()), expected)
    assert binary.predict(one).tolist() == (one[:, 0] > 0).long().tolist()
    assert several.predict(logits).tolist() == logits.argmax(1).tolist()


def test_dice_iou_and_pixel_accuracy_by_hand():
    true = torch.tensor([[0, 1, 1], [2, 2, 0]])
    pred = torch.tensor([[0, 1, 2], [2, 0, 0]])
    # class 1: TP 1, FP 0, FN 1 -> Dice 2/3, IoU 1/2; class 2: TP 1, FP 1, FN 1 -> Dice 1/2, IoU 1/3
    scores = class_scores(class_counts(pred, true, 2), ["class1", "class2"])
    expected = {"dice": 7 / 12, "iou": 5 / 12, "acc": 4 / 6, "dice_class1": 2 / 3, "dice_class2": 1 / 2}
    assert scores == pytest.approx(expected, rel=1e-12) and list(scores) == list(expected)
    # one class (the foreground of the same maps): TP 3, FP 0, FN 1 -> Dice 6/7, IoU 3/4, 5 of 6 pixels right
    binary = class_scores(class_counts((pred > 0).long(), (true > 0).long(), 1))
    assert binary == pytest.approx({"dice": 6 / 7, "iou": 3 / 4, "acc": 5 / 6}, rel=1e-12)


def random_instances(rng, shape=(48, 64), count=9):
    """Instance labels of ``count`` random rectangles (later ones drawn over earlier ones)."""
    labels = np.zeros(shape, np.int64)
    for i in range(1, count + 1):
        top, left = rng.integers(0, shape[0] - 4), rng.integers(0, shape[1] - 4)
        h, w = rng.integers(3, 12, 2)
        labels[top : top + h, left : left + w] = i
    return labels


def test_instance_matching_equals_stardist():
    from stardist.matching import matching  # the reference (only the tests import stardist)

    rng = np.random.default_rng(0)
    for _ in range(6):
        true = random_instances(rng)
        pred = np.roll(true, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))  # shifted: IoUs spread over 0.3-1
        pred[pred == rng.integers(1, 10)] = 0  # one object missed
        pred = np.where(random_instances(rng, count=2) > 0, 20 + random_instances(rng, count=2), pred)  # extras
        counts = match_counts(true, pred)
        f1 = f1_scores(counts)
        for i, thr in enumerate(THRESHOLDS):
            ref = matching(true, pred, thresh=thr)
            assert counts[i].tolist() == [ref.tp, ref.fp, ref.fn], thr
            assert f1[i] == pytest.approx(ref.f1, rel=1e-12)


def test_eval_metrics_keep_the_conditions_apart_and_report_the_engines_loss():
    true = np.zeros((20, 30), np.int64)
    true[2:9, 2:9], true[10:18, 15:25] = 1, 2  # two instances
    labels = torch.from_numpy(true)[None]  # (B=1, H, W)
    perfect = torch.where(labels > 0, 5.0, -5.0)[:, None]  # (B, maps=1, H, W)
    dark = torch.full_like(perfect, -5.0)  # all background
    output = torch.stack([perfect, dark], dim=1)  # (B, K=2, maps=1, H, W): the conditions on their own axis
    metric = EvalMetrics(label_scheme(1), ["clean", "dark"], min_size=4, split_h=1.0)
    metric.update(output, labels, torch.tensor(0.25))
    scalars, details = metric.compute()
    assert scalars == {
        "loss": 0.25,
        "dice": 1.0,
        "iou": 1.0,
        "acc": 1.0,
        "f1": 1.0,
        "f1_mean": 1.0,
        "dice_dark": 0.0,
        "f1_dark": 0.0,
    }
    assert details["conditions"]["dark"]["acc"] == pytest.approx(1 - (49 + 80) / 600)


def make_two_class_folder(root, n=2, size=48):
    """Dim disks (class 1) and bright disks (class 2) on a dark background; masks of class indices."""
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for i in range(n):
            mask = np.zeros((size, size), np.uint8)
            for k in range(4):
                cy, cx = rng.integers(8, size - 8, 2)
                mask[disk((size, size), (cy, cx), 5)] = 1 + k % 2
            image = rng.normal(20, 4, (size, size)) + (mask == 1) * 90 + (mask == 2) * 200
            write(root / split / "images" / f"img{i}.png", image.clip(0, 255).astype(np.uint8))
            write(root / split / "masks" / f"img{i}.png", mask)


def test_class_masks_are_checked_against_the_number_of_classes(tmp_path):
    root = tmp_path / "two"
    make_two_class_folder(root)
    d = build_data("segfolder", data_dir=str(root), crop=32, samples=4, classes=2)
    _, labels = d.test[0]
    assert set(labels.unique().tolist()) == {0, 1, 2}  # class indices, not instances
    _, crop = d.train[0]
    assert set(crop.unique().tolist()) <= {0, 1, 2}
    with pytest.raises(ValueError, match=r"img0.png: a mask with values \[0, 1, 2, 7\]; expected class indices 0-2"):
        write(root / "val" / "masks" / "img0.png", np.array([[0, 1, 2, 7]] * 48, np.uint8).repeat(12, 1))
        build_data("segfolder", data_dir=str(root), crop=32, classes=2)
    with pytest.raises(ValueError, match="--classes: nuclei has one class"):
        build_data("nuclei", classes=3)


@pytest.fixture(scope="module")
def two_class_run(tmp_path_factory):
    return small_segment_run(tmp_path_factory.mktemp("seg2"), make_two_class_folder, "--classes", "2")


def test_several_classes_train_with_their_own_dice_and_the_multi_otsu_baseline(two_class_run, tmp_path, capsys):
    root, out = two_class_run
    summary = json.loads((out / "summary.json").read_text())
    final = summary["test_metrics"]
    assert {"test_dice", "test_dice_class1", "test_dice_class2", "test_iou", "test_f1"} <= set(final)
    assert final["test_dice"] == pytest.approx((final["test_dice_class1"] + final["test_dice_class2"]) / 2)
    assert summary["baselines"]["multi_otsu"]["test_dice"] > 0.9  # two brightness bands: multi-Otsu's easy case
    from attnlab.engine.run_folder import load_run

    assert load_run(out).model(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)  # background + 2 classes
    image = root / "data" / "val" / "images" / "img0.png"
    assert main(["predict", "--checkpoint", str(out), str(image), "--out", str(tmp_path / "m")]) == 0
    mask = np.asarray(Image.open(tmp_path / "m" / "img0_mask.png"))
    assert mask.shape == (48, 48) and set(np.unique(mask).tolist()) <= {0, 1, 2}
    assert main(["train", "--task", "segment", "--classes", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--classes: expected int >= 1, got 0" in capsys.readouterr().err
