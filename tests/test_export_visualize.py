"""Export (ONNX via onnxruntime, TorchScript, torch.export), full-graph tracing, attention maps, PNGs."""

import json
import warnings

import numpy as np
import pytest
import torch

import attnlab
from attnlab.cli import main
from attnlab.engine.export import export_model
from attnlab.report.maps import capture_gates, spatial_maps

NAMES = attnlab.list_attentions()
ort = pytest.importorskip("onnxruntime")


def onnx_matches(model, x, path, batch=3):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing
        export_model(model, x, "onnx", path)
    session = ort.InferenceSession(str(path))
    x2 = torch.randn(batch, *x.shape[1:])  # the batch dimension is dynamic
    got = session.run(None, {"input": x2.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x2).numpy(), rtol=1e-4, atol=1e-4)


def clips_of(name, frames):
    """Temporal modules: the batch is one clip of ``frames`` frames (per-frame layout, ``num_frames``)."""
    return {"num_frames": frames} if attnlab.attention_info(name).per_frame else {}


@pytest.mark.parametrize("name", NAMES)
def test_every_module_exports_to_onnx(name, tmp_path):
    torch.manual_seed(0)
    m = attnlab.create_attention(name, 32, **clips_of(name, 2)).eval()
    batch = 4 if attnlab.attention_info(name).per_frame else 3  # temporal: two clips of two frames
    onnx_matches(m, torch.randn(2, 32, 14, 14), tmp_path / f"{name}.onnx", batch=batch)


@pytest.mark.parametrize("name", NAMES)
def test_every_module_traces_in_one_graph(name):
    torch._dynamo.reset()
    m = attnlab.create_attention(name, 32, **clips_of(name, 2)).eval()
    x = torch.randn(2, 32, 7, 6)
    compiled = torch.compile(m, backend="eager", fullgraph=True)  # raises on a graph break
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), m(x))


@pytest.mark.parametrize("attention", [None, "se", "gc", "cbam", "bam", "sk", "non_local"])
def test_resnet18_exports_in_every_format(attention, tmp_path):
    torch.manual_seed(0)
    m = attnlab.create_model("resnet18", num_classes=10, attention=attention, stem="cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    onnx_matches(m, x, tmp_path / "m.onnx")
    with torch.no_grad():
        expected = m(x)
        export_model(m, x, "torchscript", tmp_path / "m.pt")
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "m.pt"))(x), expected)
        export_model(m, x, "exported", tmp_path / "m.pt2")
        program = torch.export.load(str(tmp_path / "m.pt2"))
        torch.testing.assert_close(program.module()(x), expected)


@pytest.mark.parametrize("name", NAMES)
def test_hooks_capture_a_spatial_map_where_the_module_has_one(name):
    kw = {"attention_kwargs": clips_of(name, 1)} if attnlab.attention_info(name).per_frame else {}
    m = attnlab.create_model("resnet18", num_classes=3, attention=name, stem="cifar", **kw).eval()
    with torch.no_grad(), capture_gates(m) as maps:
        m(torch.randn(1, 3, 32, 32))
    assert maps, name
    spatial = spatial_maps(maps)
    # channel gates, and position weights without a map layout (GC, A², CC: (B, ·, N) or row+column)
    # and the temporal weights of TAM (B, C, T) and GLTR (B·H·W, T, T)
    has_spatial = name not in {
        "se",
        "ese",
        "eca",
        "ceca",
        "ecam",
        "gct",
        "srm",
        "fca",
        "gc",
        "gca",
        "a2",
        "cc",
        "sk",
        "splat",
        "halo",  # (B, heads, blocks_y, blocks_x, b², window²): each block's window weights, no map of H×W
        "bat",  # the s×s transforms between row (column) bins, (B, k, s·s)
        "dynconv",  # the softmax over the K kernels, (B, K)
        "stn",  # the affine θ, (B, 2, 3)
        "epsa",  # softmax over the scales, (B, 4, C/4, 1, 1)
        "encnet",
        "soca",
        "dia",
        "outlook",  # (B, heads, h, w, k², k²): each window's weights, no map of H×W
        "tam",
        "gltr",
    }
    assert bool(spatial) == has_spatial, (name, {k: tuple(v.shape) for k, v in maps.items()})
    for v in spatial.values():
        assert v.dim() == 4 and v.shape[:2] == (1, 1) and torch.isfinite(v).all()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("viz") / "run"
    assert main(["train", "--epochs", "1", "--batch-size", "64", "--train-limit", "128", "--out", str(out)]) == 0
    return out


def test_training_writes_curves_png(trained, monkeypatch):
    from PIL import Image

    from attnlab.report import curves

    image = np.asarray(Image.open(trained / "curves.png").convert("RGB"))
    assert image.shape[0] > 300 and image.shape[1] > 1000 and image.std() > 10  # panels, not a blank page
    # the figure behind it: one panel per metric, train and test series of the run's values
    history = [json.loads(x) for x in (trained / "metrics.jsonl").read_text().splitlines()]
    drawn = {}
    monkeypatch.setattr(curves, "save_figure", lambda fig, path: drawn.setdefault("fig", fig))
    curves.plot_curves(history, trained / "unused.png", "t")
    axes = drawn["fig"].axes
    assert [ax.get_title() for ax in axes] == ["loss", "acc", "top5"]
    lines = {line.get_label(): list(line.get_ydata()) for line in axes[1].get_lines()}
    assert lines == {"train": [r["train_acc"] for r in history], "validation": [r["val_acc"] for r in history]}


def test_visualize_draws_each_images_maps_and_grad_cam(trained, tmp_path, monkeypatch):
    from PIL import Image

    from attnlab.tasks.classify import pictures as visualize

    out = tmp_path / "maps.png"
    assert main(["visualize", "--checkpoint", str(trained), "--images", "3", "--out", str(out)]) == 0
    pixels = np.asarray(Image.open(out).convert("L"))
    assert pixels.shape[0] > 300 and pixels.std() > 10  # a grid of images, not a blank page
    drawn = {}
    monkeypatch.setattr(visualize, "save_figure", lambda fig, path: drawn.setdefault("fig", fig))
    assert main(["visualize", "--checkpoint", str(trained), "--images", "3", "--out", str(out)]) == 0
    axes = drawn["fig"].axes
    titles = [ax.get_title() for ax in axes]
    columns = len(axes) // 3
    # input, CBAM's spatial map in layer1-3 (layer4's is 1×1 on digits), channel weights, Grad-CAM
    assert len(axes) == 3 * columns and columns == 6
    rows = [titles[i * columns : (i + 1) * columns] for i in range(3)]
    assert all(r[0].startswith("true ") and ", pred " in r[0] for r in rows)
    assert all(r[-1].startswith("Grad-CAM (layer3)") for r in rows)  # layer4 is 1×1 on 28×28 digits
    assert all(r[1].startswith("layer1") and r[3].startswith("layer3") and "(2, 2)" in r[3] for r in rows)
    assert rows[0][4].startswith("top channel weights") and "layer4" in rows[0][4]


def run_exported(fmt, path, x):
    if fmt == "onnx":
        return torch.from_numpy(ort.InferenceSession(str(path)).run(None, {"input": x.numpy()})[0])
    if fmt == "torchscript":
        return torch.jit.load(str(path))(x)
    return torch.export.load(str(path)).module()(x)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "exported"])
def test_export_command(trained, tmp_path, fmt):
    from attnlab.engine.run_folder import load_run

    out = tmp_path / f"model.{fmt}"
    assert main(["export", "--checkpoint", str(trained), "--format", fmt, "--out", str(out)]) == 0
    run = load_run(trained)
    x = torch.randn(3, 1, 28, 28)  # another batch size than the export's example
    with torch.no_grad():
        torch.testing.assert_close(run_exported(fmt, out, x), run.model(x), rtol=1e-4, atol=1e-4)


def test_export_to_onnx_without_the_onnx_package_says_what_to_install(trained, tmp_path, monkeypatch, capsys):
    import attnlab.engine.export as export

    monkeypatch.setattr(export, "find_spec", lambda name: None if name == "onnx" else object())
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(trained), "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--format onnx: needs the onnx package" in err and 'pip install "attnlab[export]"' in err
    assert not out.exists()
