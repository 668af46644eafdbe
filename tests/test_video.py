"""Video: moving_digits' hygiene (one frame tells no direction), the temporal zoo modules against their equations
by hand, the heads' order (in)sensitivity, transfer from an image run, videofolder with PyAV, and the task end to
end (train, eval, predict, visualize, export)."""

import json
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import attnlab
from attnlab.cli import main
from attnlab.data.moving_digits import draw_motions, moving_digits_data, render_clips
from attnlab.data.video import build_video_data, frame_indices
from attnlab.layers.gltr import GlobalLocalTemporal
from attnlab.layers.non_local_st import NonLocalSpaceTime
from attnlab.layers.tam import TemporalAdaptive
from attnlab.models import load_torchvision_weights
from attnlab.models.video import HEADS
from attnlab.tasks.video_probe import one_frame_probe

F64 = torch.float64


def randomize(module, scale=0.3):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn_like(p))
    return module


# ---- moving_digits ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return moving_digits_data()


def test_motions_stay_inside_and_a_left_clip_is_a_right_clip_played_backwards():
    motions = draw_motions(2000, "train", frames=8, canvas=32, v_min=2 / 7, v_max=4 / 7)
    x = np.stack([m.x for m in motions])
    y = np.stack([m.y for m in motions])
    direction = np.array([m.direction for m in motions])
    assert x.min() >= 0 and x.max() <= 4 and y.min() >= 0 and y.max() <= 4  # a 28-px digit in a 32-px canvas
    steps = np.diff(x, axis=1)
    assert (steps[direction == 1] > 0).all() and (steps[direction == 0] < 0).all()  # one direction per clip
    assert 0.45 < direction.mean() < 0.55
    # the position of a frame, whichever frame, has the same distribution for both directions
    left, right = x[direction == 0].ravel(), x[direction == 1].ravel()
    assert abs(left.mean() - right.mean()) < 0.05 and abs(left.std() - right.std()) < 0.05
    # and frame t of a right clip sits where frame T-1-t of a left clip sits (symmetric around the middle)
    centre = x.mean(1, keepdims=True)
    np.testing.assert_allclose((x - centre)[direction == 0], -(x - centre)[direction == 0][:, ::-1], atol=1e-12)
    with pytest.raises(ValueError, match="travel 7 px, more than the 4 px"):
        draw_motions(1, "train", frames=8, canvas=32, v_min=0.5, v_max=1.0)


def test_rendering_at_whole_pixels_pastes_the_digit():
    digit = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    motions = draw_motions(1, "test", frames=3, canvas=32, v_min=0.1, v_max=0.2)
    m = type(motions[0])(np.array([0.0, 2.0, 4.0]), np.array([1.0, 1.0, 3.0]), 1)
    clip = render_clips(digit, [m], 32)[0, :, 0]  # (T, 32, 32)
    for t, (x, y) in enumerate([(0, 1), (2, 1), (4, 3)]):
        expected = torch.zeros(32, 32, dtype=torch.uint8)
        expected[y : y + 28, x : x + 28] = digit[0]
        assert torch.equal(clip[t], expected)


def test_moving_digits_is_deterministic_and_test_clips_use_test_digits(digits):
    train, test, classes, facts = digits
    again = moving_digits_data()
    assert torch.equal(train.clips, again[0].clips) and torch.equal(test.labels, again[1].labels)
    assert len(train) == 4000 and len(test) == 1000 and len(classes) == 20 and classes[:2] == ["0 left", "0 right"]
    from attnlab.data.mnist5k import read_digits, stratified_split

    _, labels = read_digits()
    _, test_idx = stratified_split(labels)
    assert torch.equal(test.labels // 2, torch.from_numpy(labels[test_idx]))  # mnist5k's test digits, in order
    x, y = test[0]
    assert x.shape == (8, 1, 32, 32) and x.dtype == torch.float32 and 0 <= y < 20


def test_one_frame_tells_the_digit_but_not_the_direction(digits):
    train, test, classes, _ = digits
    probe = one_frame_probe(train, test, len(classes))
    assert 0.44 < probe["val_direction_acc"] < 0.56
    assert probe["val_digit_acc"] > 0.7


# ---- temporal zoo modules by hand -------------------------------------------------------------------------------
def test_tam_against_its_equations_by_hand():
    B, T, C, H, W = 2, 4, 8, 3, 2
    m = randomize(TemporalAdaptive(C, T, beta=4).double()).eval()
    x = torch.randn(B * T, C, H, W, dtype=F64)
    clips = x.view(B, T, C, H, W)
    s = clips.mean((-1, -2)).transpose(1, 2)  # (B, C, T)
    g = m.global_branch
    out = torch.zeros_like(clips)
    for b in range(B):
        # local branch: conv1d k=3 (zero padding) -> BN (eval) -> ReLU -> 1x1 -> sigmoid
        bn = m.local_branch[1]
        h = F.conv1d(s[b : b + 1], m.local_branch[0].weight, padding=1)
        h = (h - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps) * bn.weight[:, None]
        h = torch.relu(h + bn.bias[:, None])
        v = torch.sigmoid(F.conv1d(h, m.local_branch[3].weight))[0]  # (C, T)
        for c in range(C):
            z = g[0].weight @ s[b, c]
            bn1 = g[1]
            z = torch.relu((z - bn1.running_mean) / torch.sqrt(bn1.running_var + bn1.eps) * bn1.weight + bn1.bias)
            kappa = torch.softmax(g[3].weight @ z, 0)  # K = 3 taps
            for t in range(T):
                for k in range(3):
                    src = t + k - 1
                    if 0 <= src < T:
                        out[b, t, c] += kappa[k] * v[c, src] * clips[b, src, c]
    torch.testing.assert_close(m(x), out.view(B * T, C, H, W))
    assert sum(p.numel() for p in TemporalAdaptive(64, 8).parameters()) == 4336  # the docstring's count


def test_gltr_against_its_equations_by_hand():
    """The official code's GLTR: reduce to d = C/4, [f, three dilated convs (1, 2, 3)], non-local over frames."""
    B, T, C = 2, 5, 8
    d = C // 4
    m = randomize(GlobalLocalTemporal(C, T).double()).eval()
    x = torch.randn(B * T, C, 1, 1, dtype=F64)
    seq = x.view(B, T, C).transpose(1, 2)  # (B, C, T): the paper's frame features
    expected = []
    for b in range(B):
        f = m.reduce.weight[:, :, 0] @ seq[b] + m.reduce.bias[:, None]  # (d, T)
        parts = [f]
        for conv, r in zip(m.pyramid, (1, 2, 3), strict=True):  # dilated, zero padding r, no bias
            out = torch.zeros(d, T, dtype=F64)
            for t in range(T):
                for k in range(3):
                    src = t + (k - 1) * r
                    if 0 <= src < T:
                        out[:, t] += conv.weight[:, :, k] @ f[:, src]
            parts.append(out)
        local = torch.cat(parts)  # F' (C, T)
        w, bias = m.qkv.weight[:, :, 0], m.qkv.bias
        theta, phi, g = (
            w[i * d * 2 : (i + 1) * d * 2] @ local + bias[i * d * 2 : (i + 1) * d * 2, None] for i in range(3)
        )
        a = torch.softmax(theta.T @ phi, dim=1)  # (T, T): row t over the key frames, no scaling
        y = m.proj.weight[:, :, 0] @ (g @ a.T) + m.proj.bias[:, None]
        bn = m.bn
        y = (y - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps) * bn.weight[:, None]
        expected.append((y + bn.bias[:, None] + local).T)  # (T, C)
    torch.testing.assert_close(m(x).view(B, T, C), torch.stack(expected))
    # on maps, every position is its own sequence
    xm = torch.randn(B * T, C, 2, 3, dtype=F64)
    torch.testing.assert_close(m(xm)[:, :, 1:2, 2:3], m(xm[:, :, 1:2, 2:3].contiguous()))
    # at init the non-local part is zero (BN scale 0): the module is the pyramid
    fresh = GlobalLocalTemporal(C, T).double().eval()
    seq_f = fresh.reduce(seq)
    pyramid = torch.cat([seq_f, *(conv(seq_f) for conv in fresh.pyramid)], dim=1)
    torch.testing.assert_close(fresh(x).view(B, T, C), pyramid.transpose(1, 2))
    with pytest.raises(ValueError, match="channels: expected a multiple of 4"):
        GlobalLocalTemporal(6, T)


def test_non_local_space_time_against_float64_math():
    B, T, C, H, W = 2, 3, 8, 4, 4
    m = randomize(NonLocalSpaceTime(C, T).double()).eval()
    x = torch.randn(B * T, C, H, W, dtype=F64)
    qkv = m.attn.qkv
    ci = C // 2
    w, bias = qkv.weight[:, :, 0, 0], qkv.bias
    theta = torch.einsum("oc,nchw->nohw", w[:ci], x) + bias[None, :ci, None, None]
    pooled = F.max_pool2d(x, 2)  # the input of φ and g, 1×2×2 in space, as the official code
    proj = torch.einsum("oc,nchw->nohw", w[ci:], pooled) + bias[None, ci:, None, None]
    phi, g = proj[:, :ci], proj[:, ci:]

    def tokens(t):  # (B·T, c, h, w) -> (B, T·h·w, c)
        return t.reshape(B, T, ci, -1).permute(0, 1, 3, 2).reshape(B, -1, ci)

    a = torch.softmax(tokens(theta) @ tokens(phi).transpose(1, 2) / math.sqrt(ci), dim=-1)  # (B, THW, TH'W')
    y = (a @ tokens(g)).view(B, T, H, W, ci).permute(0, 1, 4, 2, 3).reshape(B * T, ci, H, W)
    z = torch.einsum("oc,nchw->nohw", m.attn.proj.weight[:, :, 0, 0], y) + m.attn.proj.bias[None, :, None, None]
    bn = m.bn
    z = (z - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
    z = z * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    torch.testing.assert_close(m(x), x + z)


@pytest.mark.parametrize("name", ["tam", "gltr", "non_local_st"])
def test_temporal_modules_mix_frames_within_a_clip_only(name):
    torch.manual_seed(0)
    m = randomize(attnlab.create_attention(name, 12, num_frames=4).double(), 0.2).eval()
    x = torch.randn(8, 12, 5, 5, dtype=F64)  # two clips of 4 frames
    y = m(x)
    torch.testing.assert_close(y[4:], m(x[4:]))  # clip 2 alone: the same
    x2 = x.clone()
    x2[0] += 1.0  # change frame 0 of clip 1
    y2 = m(x2)
    assert not torch.allclose(y2[1:4], y[1:4])  # other frames of that clip see it
    torch.testing.assert_close(y2[4:], y[4:])  # the other clip does not
    with pytest.raises(ValueError, match="whole clips"):
        m(x[:6])


def test_tam_sits_after_the_first_conv_of_every_block_and_torchvision_weights_still_load():
    from torchvision.models import resnet18

    m = attnlab.create_model("resnet18", attention="tam", attention_kwargs={"num_frames": 2})
    places = sorted({k.split(".attn.")[0] for k in m.state_dict() if ".attn." in k})
    assert places == [f"layer{s}.{b}" for s in (1, 2, 3, 4) for b in (0, 1)]
    left = load_torchvision_weights(m, resnet18().state_dict())
    assert left and all(".attn." in k for k in left)


# ---- heads --------------------------------------------------------------------------------------------------------
def small_video(head, **kwargs):
    torch.manual_seed(0)
    return attnlab.create_model(
        "video_resnet", num_classes=5, num_frames=4, in_chans=1, head=head, dim=16, dropout=0.0, **kwargs
    )


@pytest.mark.parametrize("head", list(HEADS))
def test_every_head_learns_end_to_end_and_shows_its_frame_weights(head):
    m = small_video(head)
    x = torch.randn(3, 4, 1, 32, 32)
    m.train()
    F.cross_entropy(m(x), torch.tensor([0, 1, 2])).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    assert not missing, missing
    m.eval()
    with torch.no_grad():
        logits, weights = m.forward_with_frame_weights(x)
    assert logits.shape == (3, 5) and weights.shape == (3, 4)
    torch.testing.assert_close(weights.sum(1), torch.ones(3))


@pytest.mark.parametrize(
    ("head", "positions", "order_blind"),
    [
        ("mean", True, True),
        ("attention", False, True),
        ("clusters", False, True),
        ("attention", True, False),
        ("clusters", True, False),
        ("transformer", True, False),
        ("lstm_attention", True, False),
    ],
)
def test_which_heads_can_tell_a_clip_from_its_reverse(head, positions, order_blind):
    m = small_video(head, positions=positions).eval()
    x = torch.randn(2, 4, 1, 32, 32)
    with torch.no_grad():
        same = torch.allclose(m(x), m(x.flip(1)), atol=1e-5)
    assert same == order_blind


def test_a_frozen_backbone_keeps_its_weights_and_statistics():
    m = small_video("attention", freeze_backbone=True)
    m.train()
    stats = m.backbone.bn1.running_mean.clone()
    F.cross_entropy(m(torch.randn(2, 4, 1, 32, 32)), torch.tensor([0, 1])).backward()
    assert all(p.grad is None for p in m.backbone.parameters())
    assert m.fc.weight.grad is not None and torch.equal(m.backbone.bn1.running_mean, stats)
    with pytest.raises(ValueError, match=r"clips: expected 4 frames"):
        m(torch.randn(1, 3, 1, 32, 32))


# ---- videofolder ----------------------------------------------------------------------------------------------
def write_video(path, frames):
    """uint8 (N, H, W, 3) frames -> an MPEG-4 file, with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def moving_square(n, direction, size=32):
    frames = np.zeros((n, size, size, 3), dtype=np.uint8)
    for t in range(n):
        x = 4 + (t if direction else n - 1 - t) * 2
        frames[t, 12:20, x : x + 8] = 255
    return frames


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    pytest.importorskip("av")
    root = tmp_path_factory.mktemp("videos")
    for split, count in (("train", 3), ("val", 1)):
        for direction, name in enumerate(("left", "right")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                write_video(folder / f"{i}.mp4", moving_square(12, direction))
    (root / "train" / "left" / "broken.mp4").write_bytes(b"not a video at all")
    write_video(root / "train" / "right" / "short.mp4", moving_square(3, 1))
    return root


def test_videofolder_samples_frames_and_names_what_it_skips(video_folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = build_video_data("videofolder", root=str(video_folder), frames=4, image_size=32)
    said = " ".join(str(w.message) for w in caught)
    assert "broken.mp4" in said and "short.mp4: 3 frames, fewer than 4: frames are repeated" in said
    assert d.classes == ["left", "right"] and len(d.train) == 7 and len(d.test) == 2
    x, y = d.test[0]
    assert x.shape == (4, 3, 32, 32) and y == 0
    assert frame_indices(12, 4) == [1, 4, 7, 10] and frame_indices(3, 4) == [0, 0, 1, 2]
    random = frame_indices(12, 4, torch.Generator().manual_seed(0))
    assert all(3 * i <= r < 3 * (i + 1) for i, r in enumerate(random))  # one frame per segment (TSN)


def test_videofolder_refuses_a_class_without_readable_video(video_folder, tmp_path):
    import shutil

    shutil.copytree(video_folder, tmp_path / "v")
    for f in (tmp_path / "v" / "val" / "right").iterdir():
        f.write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"val/right: no readable video"):
        build_video_data("videofolder", root=str(tmp_path / "v"), frames=4, image_size=32)


# ---- the task end to end ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("image") / "run"
    assert main(["train", "--epochs", "1", "--train-limit", "256", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def video_run(image_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "run"
    args = ["train", "--task", "video", "--backbone", str(image_run), "--epochs", "1", "--train-limit", "64"]
    assert main([*args, "--batch-size", "16", "--dim", "32", "--out", str(out)]) == 0
    return out


def test_video_run_transfers_the_image_backbone_and_reports_the_one_frame_check(image_run, video_run, capsys):
    summary = json.loads((video_run / "summary.json").read_text())
    assert {"val_acc", "val_digit_acc", "val_direction_acc", "val_top5"} <= set(summary["final_metrics"])
    probe = summary["baselines"]["one_frame_logreg"]
    assert 0.44 < probe["val_direction_acc"] < 0.56
    assert summary["attention"] is None and summary["gflops"] > 0  # the option: the backbone run's, resolved in meta
    from attnlab.engine.run_folder import load_run

    run = load_run(video_run)
    image = load_run(image_run)
    assert run.meta["attention"] == "cbam" and run.meta["frame_model"] == "resnet18"
    # fine-tuned at a tenth of the rate for one short epoch: the stem moved a little, not far
    delta = (run.model.backbone.conv1.weight - image.model.conv1.weight).abs().max()
    assert 0 < delta < 0.05


def test_transfer_says_what_it_loaded_and_refuses_another_architecture(image_run, tmp_path, capsys):
    from attnlab.engine.config import TrainConfig
    from attnlab.engine.run_folder import read_run
    from attnlab.tasks import get_task

    task = get_task("video")
    config = TrainConfig.create("video", backbone=str(image_run), attention="tam")
    data_meta = {"frame_model": "resnet18", "attention": "tam", "stem": "imagenet"}
    model = attnlab.create_model("video_resnet", num_classes=20, in_chans=1, attention="tam")
    lines = task.initialize(model, config.options, data_meta, read_run)
    said = "\n".join(lines)
    assert "tensors loaded from --backbone" in said and "left at init" in said
    assert "tensors of the run's cbam modules" in said and "layer1.0.attn" in said  # TAM starts at init
    other = attnlab.create_model("video_resnet", num_classes=20, in_chans=1, backbone="resnet34", attention="cbam")
    config34 = TrainConfig.create("video", backbone=str(image_run))
    with pytest.raises(
        ValueError, match=r"a resnet18 \(imagenet stem\) run; the frame backbone is resnet34 .*layer1.2"
    ):
        task.initialize(
            other, config34.options, {**data_meta, "frame_model": "resnet34", "attention": "cbam"}, read_run
        )


def test_video_options_are_checked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "video", "--num-frames", "0", "--backbone", "none"]) == 2
    assert "--num-frames: expected an int >= 1, got 0" in capsys.readouterr().err
    assert main(["train", "--task", "video"]) == 2  # no default image run in this folder
    err = capsys.readouterr().err
    assert "--backbone runs/resnet18-cbam-mnist5k: no attnlab run folder" in err and "run `attnlab train` first" in err
    text_run = tmp_path / "t"
    text_run.mkdir()
    (text_run / "config.json").write_text(json.dumps({"task": "text", "model": "text_transformer"}))
    assert main(["train", "--task", "video", "--backbone", str(text_run)]) == 2
    assert "expected an image classification run of a ResNet, got task 'text'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_video_eval_predict_visualize_export(video_run, video_folder, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(video_run)]) == 0
    assert "val_direction_acc" in capsys.readouterr().out
    clip = tmp_path / "clip.mp4"
    write_video(clip, moving_square(10, 1))
    assert main(["predict", "--checkpoint", str(video_run), str(clip), str(tmp_path / "missing.mp4")]) == 2
    out = capsys.readouterr()
    line = out.out.splitlines()[0]
    assert line.startswith(f"{clip}: ") and "frame weights" in line and len(line.split("frame weights")[1].split()) == 8
    assert "missing.mp4" in out.err
    png = tmp_path / "clips.png"
    assert main(["visualize", "--checkpoint", str(video_run), "--images", "2", "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000
    ort = pytest.importorskip("onnxruntime")
    onnx = tmp_path / "video.onnx"
    assert main(["export", "--checkpoint", str(video_run), "--format", "onnx", "--out", str(onnx)]) == 0
    from attnlab.engine.run_folder import load_run

    run = load_run(video_run)
    session = ort.InferenceSession(str(onnx))
    for batch in (1, 3):  # dynamic batch
        x = torch.randn(batch, 8, 1, 32, 32)
        got = session.run(None, {"input": x.numpy()})[0]
        with torch.no_grad():
            np.testing.assert_allclose(got, run.model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_a_head_refuses_keywords_it_does_not_take():
    from attnlab.models.video import head_parameters

    assert head_parameters("transformer") == ("heads", "depth", "dropout") and head_parameters("mean") == ()
    with pytest.raises(TypeError, match="clusters"):
        small_video("attention", head_kwargs={"clusters": 4})


VIDEO_META = {
    "classes": [str(i) for i in range(20)],
    "in_chans": 1,
    "num_frames": 8,
    "frame_model": "resnet18",
    "attention": None,
    "stem": "imagenet",
}  # what the video task's build_data resolves, for models built by hand


@pytest.mark.parametrize("freeze", [False, True])
def test_a_transferred_backbone_trains_at_its_scaled_rate_or_not_at_all(image_run, freeze):
    from attnlab.engine.config import TrainConfig
    from attnlab.engine.trainer import build_optimizer

    config = TrainConfig.create(
        "video", backbone=str(image_run), lr=1e-3, backbone_lr_scale=0.1, freeze_backbone=freeze
    )
    model = config.task_object.build_model(config.options, {**VIDEO_META, "attention": "cbam"})
    optimizer, _ = build_optimizer(config, model, steps_per_epoch=10)
    rate = {id(p): g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}  # before the warm-up
    for name, p in model.named_parameters():
        if name.startswith("backbone."):
            assert rate.get(id(p)) == (None if freeze else pytest.approx(1e-4)), name
        else:
            assert rate[id(p)] == pytest.approx(1e-3), name
    scratch = TrainConfig.create("video", backbone="none", lr=1e-3)  # no transfer: one rate for all
    model = scratch.task_object.build_model(scratch.options, VIDEO_META)
    assert {g["initial_lr"] for g in build_optimizer(scratch, model, 10)[0].param_groups} == {1e-3}
