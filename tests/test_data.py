"""The classify task's data sets: mnist5k's fixed split, and CIFAR / ImageFolder loading on files the tests write."""

import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from attnlab.data.mnist5k import stratified_split
from attnlab.tasks.classify import CLASSIFY_DATA, ClassifyOptions


def build_dataset(name, root=None, **options):
    """A classify data set as the task builds it, from its options."""
    return CLASSIFY_DATA.build(name, ClassifyOptions(data=name, data_dir=root and str(root), **options))


def test_registry_lists_the_datasets():
    assert {"mnist5k", "cifar10", "cifar100", "imagefolder"} <= set(CLASSIFY_DATA.names())
    with pytest.raises(ValueError, match="did you mean 'cifar10'"):
        build_dataset("cifar01")


def test_mnist5k_is_a_fixed_stratified_4000_1000_split():
    d = build_dataset("mnist5k")
    assert (len(d.train), len(d.test), len(d.meta["classes"]), d.meta["in_chans"]) == (4000, 1000, 10, 1)
    assert Counter(d.test.labels.tolist()) == {c: 100 for c in range(10)}
    x, y = d.test[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    assert -1 < x.min() < 0 < x.max() < 3  # normalized by MNIST's mean and std
    assert set(d.train.labels[:50].tolist()) == set(range(10))  # permuted, not sorted by class
    again = build_dataset("mnist5k")
    assert torch.equal(again.test.images, d.test.images)


def test_stratified_split_on_a_hand_example():
    labels = np.array([0] * 10 + [1] * 5)
    train, test = stratified_split(labels, 0.8, seed=1)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(15))
    assert Counter(labels[train].tolist()) == {0: 8, 1: 4} and Counter(labels[test].tolist()) == {0: 2, 1: 1}


def write_fake_cifar10(root, n=8):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(range(n))}
        (folder / name).write_bytes(pickle.dumps(batch))
    names = [f"class{i}" for i in range(10)]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))


def test_cifar10_loads_local_files_and_explains_missing_ones(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py.*--download"):
        build_dataset("cifar10", root=tmp_path)
    with pytest.raises(ValueError, match="--data-dir"):
        build_dataset("cifar10")
    write_fake_cifar10(tmp_path)
    from torchvision import datasets
    from torchvision.datasets import cifar

    monkeypatch.setattr(datasets.CIFAR10, "_check_integrity", lambda self: True)  # our files, not the real md5s
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    d = build_dataset("cifar10", root=tmp_path)
    assert (len(d.train), len(d.test), len(d.meta["classes"]), d.meta["image_size"]) == (40, 8, 10, 32)
    x, y = d.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32


def test_imagefolder(tmp_path):
    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((40, 50, 3), 60 * i, dtype=np.uint8)).save(tmp_path / split / c / f"{i}.png")
    d = build_dataset("imagefolder", root=tmp_path)
    assert d.meta["classes"] == ["cat", "dog"] and len(d.train) == 6 and len(d.test) == 6
    assert d.meta["image_size"] == 40 and d.test[0][0].shape == (3, 40, 40)  # the shorter side of its images
    with pytest.raises(FileNotFoundError, match="train"):
        build_dataset("imagefolder", root=tmp_path / "train")


def test_imagefolder_reads_16_bit_and_rotated_images_as_predict_does(tmp_path):
    from attnlab.data.images import read_image

    ramp = np.linspace(0, 65535, 40 * 48).reshape(40, 48).astype(np.uint16)  # a 16-bit microscope-like ramp
    for split in ("train", "val"):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            Image.fromarray(ramp).save(tmp_path / split / c / "0.png")
            Image.fromarray(ramp[::-1].copy()).save(tmp_path / split / c / "1.png")
    d = build_dataset("imagefolder", root=tmp_path, image_size=40)
    raw = d.test.loader(d.test.samples[0][0])  # what the transforms get: uint8 (3, H, W), the ramp over 0..255
    assert raw.shape == (3, 40, 48) and raw.dtype == torch.uint8
    torch.testing.assert_close(raw[0], torch.from_numpy((ramp / 257).round().astype(np.uint8)), rtol=0, atol=0)
    assert (raw == 255).float().mean() < 0.01  # torchvision's PIL loader clips it: 99 % of the pixels at 255
    torch.testing.assert_close(raw, read_image(d.test.samples[0][0], 3))  # predict reads the same pixels
    # a camera's portrait photo: landscape pixels and an EXIF orientation tag (6: turn 90° clockwise to view)
    pixels = np.zeros((30, 50, 3), np.uint8)
    pixels[:, :10] = 255  # the stored image's left edge is white: upright, its top row
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright = read_image(tmp_path / "phone.jpg", 3)
    assert upright.shape == (3, 50, 30) and upright[:, :10].float().mean() > 240 > 15 > upright[:, 20:].float().mean()


def write_folder(root, size, n=4):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.png")


def test_imagefolder_takes_the_size_of_its_images(tmp_path):
    write_folder(tmp_path, 32)
    d = build_dataset("imagefolder", root=tmp_path)
    assert d.meta["image_size"] == 32 and d.test[0][0].shape == (3, 32, 32) and d.train[0][0].shape == (3, 32, 32)
    notes = d.meta["notes"][0]
    assert "32×32 px" in notes and "shifts" in notes and "horizontal flips" in notes
    big = build_dataset("imagefolder", root=tmp_path, image_size=96, hflip=False)
    assert big.train[0][0].shape == (3, 96, 96) and "random-resized crops, no flips" in big.meta["notes"][0]
    names = [type(t).__name__ for t in big.train.transform.transforms]
    assert "RandomHorizontalFlip" not in names and "RandomResizedCrop" in names
