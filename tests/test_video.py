"""Video: moving_digits' hygiene (one frame tells no direction), the temporal zoo modules against their equations
by hand, the heads' order (in)sensitivity, transfer from an image run, videofolder with PyAV, and the task end to
end (train, eval, predict, visualize, export)."""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import attnlab
from attnlab.cli import main
from attnlab.data.video import frame_indices
from attnlab.engine.config import TrainConfig
from attnlab.engine.evaluation import evaluate_run
from attnlab.engine.run_folder import RUNS, load_run
from attnlab.layers.gltr import GlobalLocalTemporal
from attnlab.layers.non_local_st import NonLocalSpaceTime
from attnlab.layers.tam import TemporalAdaptive
from attnlab.models import load_torchvision_weights
from attnlab.models.video import TEMPORAL_HEADS, stem_and_stages
from attnlab.tasks import get_task
from attnlab.tasks.video import DEFAULT_BACKBONE, VIDEO_DATA, VideoOptions
from attnlab.tasks.video.metrics import ClipMetrics, label_part
from attnlab.tasks.video.moving_digits import LABEL_PARTS, draw_motions, moving_digits_data, render_clips
from attnlab.tasks.video.probe import one_frame_probe
from attnlab.tasks.video.transfer import BackboneRun, frame_architecture, frozen_stages

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
    motions = draw_motions(2000, "train", num_frames=8, canvas=32, v_min=2 / 7, v_max=4 / 7)
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
        draw_motions(1, "train", num_frames=8, canvas=32, v_min=0.5, v_max=1.0)


def test_rendering_at_whole_pixels_pastes_the_digit():
    digit = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    motions = draw_motions(1, "test", num_frames=3, canvas=32, v_min=0.1, v_max=0.2)
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
    probe = one_frame_probe(train.arrays(), test.arrays(), len(classes), LABEL_PARTS)
    assert list(probe) == ["test_acc", "test_digit_acc", "test_direction_acc"]
    assert 0.44 < probe["test_direction_acc"] < 0.56
    assert probe["test_digit_acc"] > 0.7
    assert list(one_frame_probe(train.arrays(), test.arrays(), len(classes))) == ["test_acc"]  # no parts: top-1


def test_the_moving_digits_builder_says_its_label_parts_and_gives_its_clips():
    data = VIDEO_DATA.build("moving_digits", VideoOptions(backbone="none"))
    assert data.meta["label_parts"] == [["digit", 10], ["direction", 2]] and data.meta["num_frames"] == 8
    assert torch.equal(data.source.test[0], data.test.clips) and torch.equal(data.source.train[1], data.train.labels)
    assert data.meta["classes"][7] == "3 right" and data.meta["notes"][0].startswith("moving_digits: 4000 train")
    with pytest.raises(ValueError, match="--image-size: moving_digits has a fixed canvas"):
        VIDEO_DATA.build("moving_digits", VideoOptions(backbone="none", image_size=64))


def test_label_parts_and_the_clip_metrics_on_a_hand_made_confusion():
    parts = [("digit", 3), ("direction", 2)]  # class = digit·2 + direction, 6 classes
    classes = torch.arange(6)
    assert label_part(classes, parts, 0).tolist() == [0, 0, 1, 1, 2, 2]
    assert label_part(classes, parts, 1).tolist() == [0, 1, 0, 1, 0, 1]
    assert label_part(torch.tensor([23]), [("a", 2), ("b", 3), ("c", 4)], 1).item() == 2  # 23 = 1·12 + 2·4 + 3
    target = torch.tensor([0, 1, 2, 3, 4, 5, 5, 2])
    pred = torch.tensor([0, 0, 3, 3, 2, 5, 4, 2])  # right, wrong direction, wrong direction, right, wrong digit, …
    logits = F.one_hot(pred, 6).float() * 5
    metric = ClipMetrics(6, parts)
    metric.update(logits[:5], target[:5], torch.tensor(0.25))  # the engine's loss of the batch (its mean)
    metric.update(logits[5:], target[5:], torch.tensor(1.0))
    scalars, details = metric.compute()
    assert scalars["loss"] == pytest.approx((0.25 * 5 + 1.0 * 3) / 8)  # the loss given, never recomputed
    assert scalars["acc"] == pytest.approx(4 / 8)  # samples 0, 3, 5, 7
    assert scalars["digit_acc"] == pytest.approx(7 / 8)  # all but sample 4 (digit 2 taken for 1)
    assert scalars["direction_acc"] == pytest.approx(5 / 8)  # samples 1, 2, 6 have the other direction
    assert details["confusion"][1][0] == 1 and sum(map(sum, details["confusion"])) == 8
    plain = ClipMetrics(6)  # no parts: the plain classification metrics
    plain.update(logits, target, torch.tensor(0.5))
    assert list(plain.compute()[0]) == ["loss", "acc", "top5"]


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


@pytest.mark.parametrize("head", list(TEMPORAL_HEADS))
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


def test_frozen_stages_hold_the_stem_and_first_stages_fixed_and_train_the_rest():
    m = small_video("attention", frozen_stages=1)
    m.train()
    assert not m.backbone.bn1.training and not m.backbone.layer1[0].bn1.training and m.backbone.layer2.training
    stats = m.backbone.layer1[1].bn2.running_mean.clone()
    F.cross_entropy(m(torch.randn(2, 4, 1, 32, 32)), torch.tensor([0, 1])).backward()
    fixed = ("backbone.conv1.", "backbone.bn1.", "backbone.layer1.")
    for name, p in m.named_parameters():
        assert (p.grad is None) == name.startswith(fixed), name
    assert torch.equal(m.backbone.layer1[1].bn2.running_mean, stats)
    # -1: nothing fixed, every parameter learns; 4: the whole ResNet; a stage placement's module goes with its stage
    assert not small_video("attention", frozen_stages=-1).frozen
    whole = small_video("attention", frozen_stages=4)
    assert all(not p.requires_grad for p in whole.backbone.parameters())
    staged = attnlab.create_model("resnet18", num_classes=1, attention="bam", in_chans=1)  # BAM: after stages 1-3
    parts = stem_and_stages(staged, 1)
    assert parts[-1] is staged.attn["layer1"] and staged.attn["layer2"] not in parts
    with pytest.raises(ValueError, match=r"frozen_stages: expected -1 \(none\) to 4"):
        small_video("attention", frozen_stages=5)


def test_frozen_stages_default_to_the_stem_and_layer1_where_they_transfer_whole():
    def resolved(run_options=None, **options):
        o = VideoOptions(**options)
        run = None if run_options is None else BackboneRun("run", {"model": "resnet18", **run_options}, runs=None)
        return frozen_stages(o, frame_architecture(o, run), run)

    assert resolved({"attention": "cbam"}, backbone="run") == 1  # the default: the image run's own modules
    assert resolved({"attention": "cbam"}, backbone="run", attention="tam") == -1  # TAM's modules start at init
    assert resolved({"attention": "cbam", "placement": "stage"}, backbone="run") == -1  # not where the video puts them
    assert resolved({"attention": None}, backbone="run", attention="none") == 1
    assert resolved(backbone_weights="r18.pth") == 1  # torchvision's ResNet, no modules added
    assert resolved(backbone_weights="r18.pth", attention="cbam") == -1
    assert resolved(backbone_weights="r18.pth", stem="cifar") == -1  # torchvision's 7x7 stem conv does not load
    assert resolved(backbone="none") == -1  # nothing transfers
    assert resolved(backbone="none", frozen_stages=2) == 2  # as given
    with pytest.raises(ValueError, match=r"--frozen-stages: expected -1 \(none\) to 4"):
        VideoOptions(frozen_stages=-2)


def test_nothing_left_at_init_is_held_fixed():
    from attnlab.tasks.video.transfer import check_frozen_loaded

    m = small_video("attention", frozen_stages=1)
    check_frozen_loaded(m, ["layer2.0.conv1.weight"])  # a stage that trains: fine
    with pytest.raises(ValueError, match=r"--frozen-stages: 1 tensors .* left at init \(layer1.0.conv1.weight"):
        check_frozen_loaded(m, ["layer1.0.conv1.weight"])


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


def test_read_frames_decodes_only_the_frames_asked_for_and_turns_them_upright(tmp_path):
    from attnlab.data.video import count_frames, read_frames, read_video

    av = pytest.importorskip("av")
    frames = np.zeros((12, 24, 40, 3), dtype=np.uint8)
    for t in range(12):
        frames[t, :, : 3 * (t + 1)] = 200  # a bar that grows frame by frame: each frame its own picture
    path = tmp_path / "bar.mp4"
    write_video(path, frames)
    whole = read_video(path)
    assert count_frames(path) == len(whole) == 12 and whole.shape == (12, 3, 24, 40)
    for indices in ([1, 4, 7, 10], [0, 0, 1, 2], [11, 3, 3]):
        assert torch.equal(read_frames(path, indices), whole[indices])  # the same pixels, any order, repeats
    assert torch.equal(read_frames(path, [2, 30]), whole[[2, 11]])  # past the stream's end: its last frame
    (tmp_path / "notes.mp4").write_text("not a video")
    for read in (count_frames, lambda p: read_frames(p, [0])):
        with pytest.raises(ValueError, match="notes.mp4: PyAV cannot decode it"):
            read(tmp_path / "notes.mp4")
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):  # PyAV < 17 writes no rotation
        return
    turned = tmp_path / "portrait.mp4"
    with av.open(str(turned), "w") as container:  # a phone's portrait video: landscape frames and a rotation
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 40, 24, "yuv420p"
        stream.set_display_rotation(90)  # shown turned 90° counterclockwise
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    upright = read_frames(turned, [11, 5])
    assert upright.shape == (2, 3, 40, 24)  # portrait
    torch.testing.assert_close(upright, torch.rot90(whole[[11, 5]], 1, dims=(2, 3)), rtol=0, atol=0)
    bar = upright[1].float().mean(0)  # frame 5's bar, 18 px from the left edge, is now 18 px up from the bottom
    assert bar[-18:].mean() > 150 > 50 > bar[:-18].mean()


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


def videofolder_options(root, **more):
    return VideoOptions(backbone="none", data="videofolder", data_dir=str(root), num_frames=4, image_size=32, **more)


def test_videofolder_samples_frames_and_names_what_it_skips(video_folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = VIDEO_DATA.build("videofolder", videofolder_options(video_folder))
    said = " ".join(str(w.message) for w in caught)
    assert "broken.mp4" in said and "short.mp4: 3 frames, fewer than 4: frames are repeated" in said
    assert d.meta["classes"] == ["left", "right"] and len(d.train) == 7 and len(d.test) == 2
    assert "label_parts" not in d.meta and d.source is None  # plain classes; no clips held in memory
    x, y = d.test[0]
    assert x.shape == (4, 3, 32, 32) and y == 0
    assert frame_indices(12, 4) == [1, 4, 7, 10] and frame_indices(3, 4) == [0, 0, 1, 2]
    random = frame_indices(12, 4, torch.Generator().manual_seed(0))
    assert all(3 * i <= r < 3 * (i + 1) for i, r in enumerate(random))  # one frame per segment (TSN)


def test_videofolder_crops_every_frame_of_a_training_clip_alike(video_folder):
    d = VIDEO_DATA.build("videofolder", videofolder_options(video_folder, crop_scale=0.35))
    frame = torch.randint(256, (1, 3, 48, 48), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    torch.manual_seed(1)
    cropped = d.train.transform(frame.expand(4, -1, -1, -1))
    assert cropped.shape == (4, 3, 32, 32) and all(torch.equal(cropped[0], c) for c in cropped[1:])
    assert not torch.equal(cropped[0], d.test.transform(frame)[0])  # a crop, where evaluation takes the centre
    torch.manual_seed(1)
    torch.testing.assert_close(d.train.transform(frame.expand(4, -1, -1, -1)), cropped)  # the seed decides it
    plain = VIDEO_DATA.build("videofolder", videofolder_options(video_folder, crop_scale=1.0))
    torch.testing.assert_close(plain.train.transform(frame), plain.test.transform(frame))
    with pytest.raises(ValueError, match=r"--crop-scale: expected a number in \(0, 1\], got 0"):
        videofolder_options(video_folder, crop_scale=0)


def test_motion_is_flow_for_a_videofolder_and_none_for_moving_digits(video_folder):
    assert VideoOptions().motion == "none" and videofolder_options(video_folder).motion == "flow"
    assert VideoOptions(data="videofolder", motion="none").motion == "none"


def test_videofolder_refuses_a_class_without_readable_video(video_folder, tmp_path):
    import shutil

    shutil.copytree(video_folder, tmp_path / "v")
    for f in (tmp_path / "v" / "val" / "right").iterdir():
        f.write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"val/right: no readable video"):
        VIDEO_DATA.build("videofolder", videofolder_options(tmp_path / "v"))


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
    assert {"test_acc", "test_digit_acc", "test_direction_acc", "test_top5"} <= set(summary["test_metrics"])
    assert {"val_acc", "val_digit_acc", "val_direction_acc", "val_top5"} <= set(summary["val_metrics"])
    probe = summary["baselines"]["one_frame_logreg"]
    assert 0.44 < probe["test_direction_acc"] < 0.56
    assert summary["baselines"]["frame_diff_logreg"]["test_acc"] > 0  # fitted beside the network
    assert summary["attention"] == "backbone" and summary["gflops"] > 0  # the option: the run's, resolved in meta
    run = load_run(video_run)
    image = load_run(image_run)
    assert run.meta["attention"] == "cbam" and run.meta["frame_model"] == "resnet18"
    # the stem and layer1 transfer whole, so they are held fixed (weights and batch-norm statistics, bit for bit);
    # the rest is fine-tuned at a tenth of the rate for one short epoch: it moved a little, not far
    assert run.meta["frozen_stages"] == 1
    theirs, ours = image.model.state_dict(), run.model.backbone.state_dict()
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.1.bn2.running_var"):
        assert torch.equal(ours[key], theirs[key]), key
    delta = (ours["layer2.0.conv1.weight"] - theirs["layer2.0.conv1.weight"]).abs().max()
    assert 0 < delta < 0.05


VIDEO_META = {
    "classes": [str(i) for i in range(20)],
    "in_chans": 1,
    "num_frames": 8,
    "frame_model": "resnet18",
    "attention": None,
    "stem": "imagenet",
}  # what the video task's build_data resolves, for models built by hand


def video_task(meta=None, runs=RUNS, **options):
    return TrainConfig.create("video", **options).new_task(meta={**VIDEO_META, **(meta or {})}, runs=runs)


def test_transfer_says_what_it_loaded_and_refuses_another_architecture(image_run):
    task = video_task({"attention": "tam"}, backbone=str(image_run), attention="tam")
    model = attnlab.create_model("video_resnet", num_classes=20, in_chans=1, attention="tam")
    said = "\n".join(task.initialize(model))
    assert "tensors loaded from --backbone" in said and "left at init" in said
    assert "tensors of the run's cbam modules" in said and "layer1.0.attn" in said  # TAM starts at init
    image = load_run(image_run).model.state_dict()
    backbone = model.backbone.state_dict()
    assert torch.equal(backbone["layer2.1.conv2.weight"], image["layer2.1.conv2.weight"])  # loaded, bit for bit
    other = attnlab.create_model("video_resnet", num_classes=20, in_chans=1, backbone="resnet34", attention="cbam")
    task34 = video_task({"frame_model": "resnet34", "attention": "cbam"}, backbone=str(image_run))
    with pytest.raises(
        ValueError, match=r"a resnet18 \(imagenet stem\) run; the frame backbone is resnet34 .*layer1.2"
    ):
        task34.initialize(other)
    assert video_task(backbone="none").initialize(model) == ["frame backbone: trained from scratch (--backbone none)"]
    asked = video_task(backbone="none", meta={"frozen_stages": 1}).initialize(model)  # --frozen-stages 1 from scratch
    assert asked[1] == "  the stem and layer1 fixed at their initialization (--frozen-stages 1)"


class CountingRuns:
    """The engine's run reader, counting what the task asks of it."""

    def __init__(self):
        self.calls = []

    def config(self, path):
        self.calls.append("config")
        return RUNS.config(path)

    def meta(self, path):
        self.calls.append("meta")
        return RUNS.meta(path)

    def weights(self, path):
        self.calls.append("weights")
        return RUNS.weights(path)


def test_the_backbone_run_is_read_once_through_the_engines_run_reader(image_run):
    runs = CountingRuns()
    task = TrainConfig.create("video", backbone=str(image_run)).new_task(runs=runs)
    task.check_names()
    data = task.build_data()
    task.meta = data.meta
    assert (data.meta["frame_model"], data.meta["attention"], data.meta["stem"]) == ("resnet18", "cbam", "imagenet")
    task.initialize(task.build_model())
    # config.json once, the data meta once (the run's stem was the data's), the weights once, to load them
    assert runs.calls == ["config", "meta", "weights"]
    with pytest.raises(ValueError, match="built without runs="):
        TrainConfig.create("video", backbone=str(image_run)).new_task().check_names()


def test_the_default_backbone_is_where_the_default_image_run_writes():
    classify = get_task("classify")
    assert classify(classify.Options()).default_out() == Path(DEFAULT_BACKBONE)


def test_video_options_are_checked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "video", "--num-frames", "0", "--backbone", "none"]) == 2
    assert "--num-frames: expected int >= 1, got 0" in capsys.readouterr().err
    # a missing --backbone folder is refused (only the default image run is made when missing: see below)
    assert main(["train", "--task", "video", "--backbone", "runs/mine"]) == 2
    assert "--backbone runs/mine: no attnlab run folder" in capsys.readouterr().err
    text_run = tmp_path / "t"
    text_run.mkdir()
    (text_run / "config.json").write_text(json.dumps({"task": "text", "model": "text_transformer"}))
    assert main(["train", "--task", "video", "--backbone", str(text_run)]) == 2
    assert "expected an image classification run of a ResNet, got task 'text'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ValueError, match="--backbone-lr-scale: expected float >= 0, got -1.0"):
        VideoOptions(backbone_lr_scale=-1.0)


def test_attention_none_means_no_module_and_backbone_the_runs(image_run, capsys):
    """--attention none is no module whatever the run had (the CLI reads "none" of an optional field as None,
    so video's --attention is a plain string with its own word for "the run's")."""
    assert VideoOptions(attention="none").attention == "none" and VideoOptions(attention=None).attention == "backbone"
    for given, resolved in (("none", None), ("backbone", "cbam"), ("se", "se")):
        task = TrainConfig.create("video", backbone=str(image_run), attention=given).new_task(runs=RUNS)
        assert task.build_data().meta["attention"] == resolved
    args = ["train", "--task", "video", "--attention", "none", "--head", "transformer", "--print-config"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "attention: none" in printed and "head: transformer" in printed


def test_video_predict_declares_its_own_top():
    import argparse

    from attnlab.tasks.video import VideoCLI

    parser = argparse.ArgumentParser()
    VideoCLI.add_predict_arguments(parser)
    assert parser.parse_args([]).top == 3 and parser.parse_args(["--top", "2"]).top == 2
    assert "videos" in parser.format_help()


def test_the_clip_figure_draws_the_frames_and_the_models_frame_weights(video_run):
    from attnlab.tasks.video.pictures import clip_figure

    run = load_run(video_run)
    test = run.data().test
    fig = clip_figure(run.model, test, run.meta, 2, "title")
    x = torch.stack([test[i][0] for i in range(2)])
    with torch.no_grad():
        _, weights = run.model.forward_with_frame_weights(x)
    bars = [ax for ax in fig.axes if ax.patches]
    assert len(bars) == 2  # one bar chart per clip
    for b, ax in enumerate(bars):
        np.testing.assert_allclose([p.get_height() for p in ax.patches], weights[b].numpy(), rtol=1e-6)
    frames = [ax for ax in fig.axes if len(ax.images) == 1]  # the frames; the map row has a frame and a map each
    overlays = [ax for ax in fig.axes if len(ax.images) == 2]
    assert len(frames) == len(overlays) == 2 * 8  # CBAM's spatial map over every frame
    mean, std = run.meta["mean"][0], run.meta["std"][0]
    for i, ax in enumerate(frames):
        expected = (x[i // 8, i % 8, 0] * std + mean).clamp(0, 1).numpy()
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), expected, atol=1e-6)
    assert frames[0].get_ylabel().startswith(f"true {run.meta['classes'][test[0][1]]}\npred ")


def test_video_eval_predict_visualize_export(video_run, video_folder, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(video_run)]) == 0
    assert "test_direction_acc" in capsys.readouterr().out
    clip = tmp_path / "clip.mp4"
    write_video(clip, moving_square(10, 1))
    assert main(["predict", "--checkpoint", str(video_run), str(clip), str(tmp_path / "missing.mp4")]) == 2
    out = capsys.readouterr()
    line = out.out.splitlines()[0]
    assert line.startswith(f"{clip}: ") and "frame weights" in line and len(line.split("frame weights")[1].split()) == 8
    assert line.split("frame weights")[0].count(" 0.") + line.split("frame weights")[0].count(" 1.") == 3  # --top 3
    assert "missing.mp4" in out.err
    assert main(["predict", "--checkpoint", str(video_run), "--top", "1", str(clip)]) == 0  # video's own --top
    line = capsys.readouterr().out.splitlines()[0]
    assert len(line.split("frame weights")[0].split(", ")) == 1
    # a flag of another task's predict (text's; classify's only flag, --top, is video's own too) is refused
    assert main(["predict", "--checkpoint", str(video_run), "--text", "a review", str(clip)]) == 2
    assert "--text: not a predict flag of task 'video' (it is of: text)" in capsys.readouterr().err
    png = tmp_path / "clips.png"
    assert main(["visualize", "--checkpoint", str(video_run), "--images", "2", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # its content: test_the_clip_figure_draws_…
    ort = pytest.importorskip("onnxruntime")
    onnx = tmp_path / "video.onnx"
    assert main(["export", "--checkpoint", str(video_run), "--format", "onnx", "--out", str(onnx)]) == 0
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


@pytest.mark.parametrize("freeze", [False, True])
def test_a_transferred_backbone_trains_at_its_scaled_rate_or_not_at_all(image_run, freeze):
    from attnlab.engine.trainer import build_optimizer

    config = TrainConfig.create(
        "video", backbone=str(image_run), epochs=1, lr=1e-3, backbone_lr_scale=0.1, freeze_backbone=freeze
    )
    # the stages build_data resolves for this run (test_video_run_transfers_the_image_backbone_...)
    task = config.new_task(meta={**VIDEO_META, "attention": "cbam", "frozen_stages": 1}, runs=RUNS)
    model = task.build_model()
    optimizer, _ = build_optimizer(config.recipe, task, model, steps_per_epoch=10)
    rate = {id(p): g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}  # before the warm-up
    for name, p in model.named_parameters():
        if name.startswith(("backbone.conv1.", "backbone.bn1.", "backbone.layer1.")):  # --frozen-stages 1
            assert rate.get(id(p)) is None, name
        elif name.startswith("backbone."):
            assert rate.get(id(p)) == (None if freeze else pytest.approx(1e-4)), name
        else:
            assert rate[id(p)] == pytest.approx(1e-3), name
    scratch = TrainConfig.create("video", backbone="none", epochs=1, lr=1e-3)  # no transfer: one rate for all
    task = scratch.new_task(meta=VIDEO_META)
    model = task.build_model()
    assert {g["initial_lr"] for g in build_optimizer(scratch.recipe, task, model, 10)[0].param_groups} == {1e-3}


def test_the_default_video_run_asks_for_the_default_image_run_first():
    """From an empty folder `attnlab train --task video` trains the default image run first (the engine makes a
    missing prerequisite; tests/test_task_seam.py checks that on the fake task); another backbone is the user's."""
    (need,) = TrainConfig.create("video").new_task().prerequisites()
    assert need.folder == Path(DEFAULT_BACKBONE) and need.task == "classify" and need.values == {}
    image_run = TrainConfig.create(need.task, **need.values)
    assert image_run.new_task().default_out() == need.folder  # what `attnlab train` makes, where it makes it
    assert TrainConfig.create("video", backbone="runs/mine").new_task().prerequisites() == []
    assert TrainConfig.create("video", backbone=None).new_task().prerequisites() == []
    # auto: a videofolder's RGB frames train from scratch (the digits backbone transfers badly to them, measured)
    assert VideoOptions(data="videofolder").backbone is None and VideoOptions().backbone == DEFAULT_BACKBONE
    assert VideoOptions(backbone_weights="r18.pth").backbone is None  # the weights given are the source


def test_a_video_run_evaluates_after_its_backbone_run_is_gone(video_run, tmp_path):
    """eval and visualize rebuild the data, not the transfer: the frame ResNet comes from the run's own meta."""
    assert main(["eval", "--checkpoint", str(video_run)]) == 0
    expected = json.loads((video_run / "eval.json").read_text())["metrics"]
    run = load_run(video_run)
    run.task.options.backbone = str(tmp_path / "deleted")  # what the run names when its backbone run is gone
    assert evaluate_run(run)["metrics"] == expected


def test_the_one_frame_probe_fits_on_the_training_clips_only(monkeypatch):
    """With a carved validation split the probe, like the other baselines, never sees the validation clips."""
    from attnlab.tasks.base import TaskData
    from attnlab.tasks.video import probe
    from attnlab.tasks.video import task as video_task
    from attnlab.tasks.video.data import ClipArrays

    clips, labels = torch.arange(20).view(20, 1, 1, 1, 1).to(torch.uint8), torch.arange(20) % 2
    seen = {}
    monkeypatch.setattr(probe, "one_frame_probe", lambda train, test, k, parts: seen.update(train=train) or {})
    monkeypatch.setattr("attnlab.tasks.video.baseline.frame_baselines", lambda *a: {})
    source = ClipArrays((clips, labels), (clips[:4], labels[:4]))
    data = TaskData(None, None, {"classes": ["a", "b"]}, source=source)
    data.split = {"train": [1, 3, 4, 8], "val": [0, 2]}
    video_task.Video(VideoOptions(backbone="none")).baselines(data)
    assert seen["train"][0].flatten().tolist() == [1, 3, 4, 8] and seen["train"][1].tolist() == [1, 1, 0, 0]
