"""Pyramidal Lucas–Kanade flow (attnlab.models.flow) against known shifts of a real photograph and against
scikit-image's iterative Lucas–Kanade (``optical_flow_ilk``) on the same frames."""

import numpy as np
import pytest
import torch
from scipy.ndimage import shift
from skimage import data
from skimage.color import rgb2gray
from skimage.registration import optical_flow_ilk

from attnlab.models.flow import ClipFlow, _box_mean, lucas_kanade


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return rgb2gray(data.astronaut())[100:228, 100:228].astype(np.float32)  # 128×128, face and suit


def pair(image: np.ndarray, dx: float, dy: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``image`` and the image with its content moved by (dx, dy) px (cubic spline), as (1, 1, H, W)."""
    moved = shift(image, (dy, dx), order=3, mode="nearest")
    return torch.from_numpy(image)[None, None], torch.from_numpy(moved.astype(np.float32))[None, None]


INNER = (slice(16, -16), slice(16, -16))  # away from the borders the content leaves or enters by


@pytest.mark.parametrize(("dx", "dy"), [(0.3, 0.2), (1.0, 0.0), (3.0, -2.0), (-6.0, 1.5)])
def test_a_shift_of_a_photograph_is_found_to_a_tenth_of_a_pixel(photo, dx, dy):
    flow = lucas_kanade(*pair(photo, dx, dy))[0]
    assert flow.shape == (2, 128, 128)
    assert abs(flow[0][INNER].median().item() - dx) < 0.1
    assert abs(flow[1][INNER].median().item() - dy) < 0.1
    assert ((flow[0][INNER] - dx).abs() < 0.5).float().mean() > 0.8  # pixel by pixel, not only on the whole


def test_it_agrees_with_scikit_image_pixel_by_pixel(photo):
    """Both solve the same windowed least squares coarse to fine; skimage returns (rows, columns)."""
    first, second = pair(photo, 2.5, -1.0)
    ours = lucas_kanade(first, second, window=7)[0].numpy()
    v, u = optical_flow_ilk(first[0, 0].numpy(), second[0, 0].numpy(), radius=3)
    inner = (slice(None), *INNER)
    reference = np.stack([u, v])
    assert np.median(np.abs(ours - reference)[inner]) < 0.1
    assert np.mean(np.abs(ours - reference)[inner] < 0.5) > 0.9


def test_no_motion_no_flow_and_flat_images_stay_finite(photo):
    first, _ = pair(photo, 0, 0)
    assert lucas_kanade(first, first).abs().max() < 1e-4
    flat = torch.full((2, 1, 32, 32), 0.5)
    assert torch.isfinite(lucas_kanade(flat, flat + 0.1)).all()


def test_the_flow_does_not_depend_on_contrast(photo):
    first, second = pair(photo, 1.5, 0.5)
    low, high = lucas_kanade(first, second), lucas_kanade(10 * first, 10 * second)
    assert ((low - high).abs() < 0.01).float().mean() > 0.99  # (float32 rounding where the texture is faint)


def test_a_nearly_flat_region_gets_a_small_flow_that_rounding_does_not_move(photo):
    """A window far flatter than its image (compressed sky, a dark border: faint noise, no texture) has no
    information about motion: its flow stays near the coarser level's instead of error / gradient, which grew
    to 10⁴ px on real clips and followed the last bit of the input."""
    image = photo.copy()
    rng = np.random.default_rng(0)
    image[:, 64:] = 0.5 + 1e-5 * rng.standard_normal((128, 64)).astype(np.float32)  # the right half: faint noise
    first, second = pair(image, 1.0, 0.0)
    second[..., 64:] = torch.from_numpy(0.5 + 1e-5 * rng.standard_normal((128, 64)).astype(np.float32))  # new noise
    flow = lucas_kanade(first, second)[0]
    assert flow[:, 16:-16, 80:-8].abs().max() < 1  # no motion to read there: nothing wild
    assert abs(flow[0, 16:-16, 16:48].median().item() - 1.0) < 0.1  # the textured half still reads its shift
    clip = torch.stack([first[0], second[0]])[None]  # (1, 2, 1, H, W)
    again = clip + 1e-6 * torch.randn(clip.shape, generator=torch.Generator().manual_seed(0))
    assert (ClipFlow(4)(clip) - ClipFlow(4)(again)).abs().max() < 0.01  # rounding-sized changes stay small


@pytest.mark.parametrize(("size", "window"), [((32, 32), 7), ((9, 13), 7), ((5, 3), 7), ((16, 8), 1), ((6, 6), 5)])
def test_the_box_mean_is_avg_pools_without_the_padding(size, window):
    x = torch.randn(3, 5, *size, dtype=torch.float64)
    x[:, :, : size[0] // 2, : size[1] // 2] = 0  # a flat corner stays exactly 0
    want = torch.nn.functional.avg_pool2d(x, window, stride=1, padding=window // 2, count_include_pad=False)
    got = _box_mean(x, window)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    corner = (
        slice(None),
        slice(None),
        slice(0, max(0, size[0] // 2 - window // 2)),
        slice(0, max(0, size[1] // 2 - window // 2)),
    )
    assert (got[corner] == 0).all()


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"first, second: expected two grayscale batches \(N, 1, H, W\)"):
        lucas_kanade(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="window: expected an odd positive int, got 4"):
        lucas_kanade(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), window=4)


# ---- the video model's motion descriptor ------------------------------------------------------------------------
def panned(photo: np.ndarray, frames: int, step: int, side: int = 64) -> torch.Tensor:
    """A clip (1, T, 3, side, side) of a window moving ``step`` px a frame to the left over the photograph: its
    content moves right by ``step`` px a frame."""
    clip = [photo[20 : 20 + side, 40 - t * step : 40 - t * step + side] for t in range(frames)]
    return torch.from_numpy(np.stack(clip))[None, :, None].expand(-1, -1, 3, -1, -1).contiguous()


def test_clip_flow_reads_a_pan_in_pixels_of_a_32_px_frame(photo):
    flow = ClipFlow(grid=4)(panned(photo, 5, 2))
    assert flow.shape == (1, 5, 32)  # T frames × (x, y) × 4×4 cells
    x, y = flow[0, :, :16], flow[0, :, 16:]
    assert abs(x.median().item() - 2 * 32 / 64) < 0.1 and y.abs().median().item() < 0.1
    torch.testing.assert_close(flow[0, -1], flow[0, -2])  # the last frame: the flow into it
    backwards = ClipFlow(grid=4)(panned(photo, 5, 2).flip(1))
    assert backwards[0, :, :16].median().item() < -0.9  # the same clip played backwards moves left


def test_clip_flow_is_float32_under_autocast_and_batch_independent(photo):
    clips = torch.cat([panned(photo, 4, 1), panned(photo, 4, 3)]).float()
    flow = ClipFlow()(clips)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_bf16 = ClipFlow()(clips)
    assert in_bf16.dtype == torch.float32
    torch.testing.assert_close(in_bf16, flow)
    torch.testing.assert_close(ClipFlow()(clips[1:]), flow[1:])
    with pytest.raises(ValueError, match=r"clips: optical flow needs at least 2 frames"):
        ClipFlow()(clips[:, :1])


def test_a_video_model_with_motion_sees_the_flow_and_exports(photo, tmp_path):
    import attnlab
    from attnlab.engine.export import export_model

    torch.manual_seed(0)
    model = attnlab.create_model("video_resnet", num_classes=3, num_frames=4, motion="flow", dim=16).eval()
    assert model.proj[0].in_features == 512 + 32
    clip = panned(photo, 4, 2).float() / 255
    # the descriptor reaches the head: zero the appearance weights and the output still depends on the motion
    with torch.no_grad():
        model.proj[0].weight[:, :512] = 0
        assert not torch.allclose(model(clip), model(clip.flip(1)))
    ort = pytest.importorskip("onnxruntime")
    path = export_model(model, clip, "onnx", tmp_path / "motion.onnx")
    got = ort.InferenceSession(str(path)).run(None, {"input": clip.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(clip).numpy(), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"motion: expected one of \['none', 'flow'\], got 'optical'"):
        attnlab.create_model("video_resnet", num_classes=3, num_frames=4, motion="optical")
