"""The classical baselines of the image and video tasks: accuracy on real digits and on synthetic moving squares,
agreement with an independent scikit-learn fit at the chosen hyperparameters, the choice made without the test
split, area downsampling, the SVM's size limit, determinism; the shared validation carve and its tie rule."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from attnlab.data.mnist5k import TensorImages, read_digits, stratified_split, transforms
from attnlab.data.splits import stratified_indices
from attnlab.tasks import classical
from attnlab.tasks.classify import baseline as image_baseline
from attnlab.tasks.classify.baseline import pixel_baselines
from attnlab.tasks.video.baseline import frame_baselines, frame_features


def digits(n_train: int, n_test: int, test_labels=None) -> tuple[TensorImages, TensorImages]:
    """The first ``n_train`` / ``n_test`` digits of mnist5k's split, through its evaluation transform."""
    x, y = read_digits()
    train, test = stratified_split(y)
    train, test = train[:n_train], test[:n_test]
    images = torch.from_numpy(x.astype(np.uint8)).view(-1, 1, 28, 28)
    labels = torch.from_numpy(y)
    test_y = labels[test] if test_labels is None else test_labels
    t = transforms(train=False)
    return TensorImages(images[train], labels[train], t), TensorImages(images[test], test_y, t)


@pytest.fixture(scope="module")
def digit_run():
    train, test = digits(500, 200)
    return train, test, pixel_baselines(train, test)


def as_arrays(data) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([data[i][0].flatten().numpy() for i in range(len(data))])
    return x, np.array([data[i][1] for i in range(len(data))])


def test_pixel_baselines_are_sensible_and_match_an_independent_fit(digit_run):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from threadpoolctl import threadpool_limits

    train, test, r = digit_run
    assert set(r) == {"pixels_logreg", "pixels_svm"}
    assert r["pixels_logreg"]["test_acc"] > 0.8 and r["pixels_svm"]["test_acc"] > 0.8
    x, y = as_arrays(train)  # 28 px <= max_side: the pixels as they are
    xt, yt = as_arrays(test)
    with threadpool_limits(1, user_api="blas"):  # spinning BLAS threads on shared cores: see the module
        scaler = StandardScaler().fit(x)
        lr = LogisticRegression(C=r["pixels_logreg"]["C"], max_iter=1000).fit(scaler.transform(x), y)
        pca = PCA(r["pixels_svm"]["pca_dims"], random_state=0).fit(x)
        svm = SVC(C=r["pixels_svm"]["C"], gamma=r["pixels_svm"]["gamma"]).fit(pca.transform(x), y)
    predictions = {"pixels_logreg": lr.predict(scaler.transform(xt)), "pixels_svm": svm.predict(pca.transform(xt))}
    for name, pred in predictions.items():
        assert r[name]["test_acc"] == pytest.approx((pred == yt).mean(), abs=1e-12)
        assert r[name]["test_macro_f1"] == pytest.approx(f1_score(yt, pred, average="macro"), abs=1e-12)


def test_pixel_baselines_choose_without_the_test_labels(digit_run):
    _, test, r = digit_run
    shuffled = torch.from_numpy(np.random.default_rng(1).permutation(test.labels.numpy()))
    train, test = digits(500, 200, test_labels=shuffled)
    r2 = pixel_baselines(train, test)
    for name in r:
        assert r2[name]["test_acc"] < r[name]["test_acc"] - 0.3  # the scores see the labels ...
        hyper = {k: v for k, v in r[name].items() if not k.startswith("test_")}
        assert hyper == {k: v for k, v in r2[name].items() if not k.startswith("test_")}  # ... the choice does not


def test_pixel_baselines_are_deterministic(digit_run):
    train, test, r = digit_run
    assert pixel_baselines(train, test) == r


def test_pixel_baselines_downsample_by_area_and_skip_a_large_svm(monkeypatch):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 2
    big = F.interpolate(torch.randn(120, 3, 4, 4, generator=g) + y[:, None, None, None], size=64, mode="nearest")
    big = big + 0.5 * torch.randn(big.shape, generator=g)
    small = F.avg_pool2d(big, 2)  # what area interpolation to 32 px makes of 64 px
    r_big = pixel_baselines(TensorDataset(big[:90], y[:90]), TensorDataset(big[90:], y[90:]), max_side=32)
    r_small = pixel_baselines(TensorDataset(small[:90], y[:90]), TensorDataset(small[90:], y[90:]), max_side=32)
    for name in r_small:
        big_scores, small_scores = dict(r_big[name]), dict(r_small[name])
        assert big_scores.pop("test_predictions") == small_scores.pop("test_predictions")
        assert big_scores == pytest.approx(small_scores, rel=1e-6)
    monkeypatch.setattr(image_baseline, "SVM_MAX_TRAIN", 50)
    with pytest.warns(UserWarning, match="pixels_svm skipped"):
        r = pixel_baselines(TensorDataset(small[:90], y[:90]), TensorDataset(small[90:], y[90:]))
    assert set(r) == {"pixels_logreg"} and r["pixels_logreg"] == r_small["pixels_logreg"]


def moving_squares(n: int, channels: int, seed: int, frames: int = 8, size: int = 24) -> TensorDataset:
    """Clips (T, C, size, size) of a bright 5 px square moving 2 px a frame, label 0 leftwards, 1 rightwards, on
    noise. Both directions sweep the same band (start of the sweep uniform): one frame, or the mean frame, does not
    tell them apart."""
    g = torch.Generator().manual_seed(seed)
    side, step = 5, 2
    travel = step * (frames - 1)
    label = torch.randint(2, (n,), generator=g)
    band = torch.randint(size - side - travel + 1, (n,), generator=g)  # the sweep's left edge
    top = torch.randint(size - side + 1, (n,), generator=g)
    colour = 0.5 + 0.5 * torch.rand(n, channels, generator=g)
    clips = 0.2 * torch.randn(n, frames, channels, size, size, generator=g)
    for i in range(n):
        for t in range(frames):
            left = band[i] + (step * t if label[i] == 1 else travel - step * t)
            clips[i, t, :, top[i] : top[i] + side, left : left + side] += colour[i, :, None, None]
    return TensorDataset((clips - 0.25) / 0.5, label)


@pytest.mark.parametrize("channels", [1, 3])
def test_frame_differences_tell_left_from_right(channels):
    train, test = moving_squares(200, channels, seed=0), moving_squares(100, channels, seed=1)
    r = frame_baselines(train, test, 2)
    assert r["frame_diff_logreg"]["test_acc"] > 0.9
    assert r["flow_logreg"]["test_acc"] > 0.9
    assert r["mean_frame_logreg"]["test_acc"] < 0.75  # the data: order is what tells the classes apart
    assert frame_baselines(train, test, 2) == r


def test_frame_features_by_hand():
    clip = torch.tensor([0.0, 2.0, 1.0, 5.0]).view(4, 1, 1, 1).expand(4, 2, 4, 6).clone()  # T = 4, C = 2, 4×6 px
    clip[:, 1] *= -1
    clip[:, :, :2, :2] += 1.0  # a top-left 2×2 block: one pixel of the 2×3 downsampled frame
    features = frame_features(clip, max_side=2)
    assert features.shape == (3 * 2 * 2 * 3 + 3 * 2 * 4 * 4,)  # then the flow: (T − 1) pairs × (x, y) × 4×4 cells
    f = features[: 3 * 2 * 2 * 3].reshape(3, 2, 2, 3)  # [mean, mean |d|, mean d] × (C, h, w)
    mean = torch.tensor([2.0, -2.0])
    torch.testing.assert_close(f[0, :, 1, 1], mean.numpy())
    torch.testing.assert_close(f[0, :, 0, 0], (mean + 1).numpy())  # the block, averaged with nothing: 2×2 → 1
    torch.testing.assert_close(f[1, :, 0, 2], np.full(2, 7 / 3, dtype=np.float32))  # (2 + 1 + 4) / 3
    torch.testing.assert_close(f[2, :, 0, 2], np.array([5 / 3, -5 / 3], dtype=np.float32))  # (last − first) / 3
    with pytest.raises(ValueError, match="T >= 2"):
        frame_features(clip[:1])


def test_the_carve_is_the_projects_and_ties_go_to_the_first_grid_point():
    y = np.repeat(np.arange(3), [10, 5, 2])
    fit, val = classical.carve(y, "test")
    kept, held = stratified_indices(y, classical.VAL_FRACTION, 0, at_least_one=True)
    assert np.array_equal(fit, kept) and np.array_equal(val, held)
    assert np.bincount(y[val]).tolist() == [2, 1, 1]  # a fifth of each class, at least one
    with pytest.raises(ValueError, match="no validation part"):
        classical.carve(np.array([0]), "test")

    class Constant:  # predicts class 0 whatever it is fitted on: every grid point scores the same
        def __init__(self, k: int) -> None:
            self.k = k

        def fit(self, x, y):
            return self

        def predict(self, x):
            return np.zeros(len(x), dtype=np.int64)

    x, xt, yt = np.zeros((len(y), 1)), np.zeros((4, 1)), np.array([0, 0, 1, 2])
    grid = [{"k": 3}, {"k": 1}, {"k": 2}]
    both = {
        "a": classical.Baseline(Constant, grid, (x, y), (xt, yt)),
        "b": classical.Baseline(Constant, grid[1:], (x, y), (xt, yt)),
    }
    results = classical.chosen_and_scored(both, np.arange(4), (fit, val))
    assert results.keys() == {"a", "b"} and results["b"]["k"] == 1  # each baseline its own grid's first
    r = results["a"]
    assert r.pop("test_predictions") == [0, 0, 0, 0]  # the refitted model's, in test order
    assert r == pytest.approx({"test_acc": 0.5, "test_macro_f1": (2 / 3) / 4, "k": 3})  # class 3 unseen counts 0
