"""The data registry: mnist5k's fixed split, and CIFAR / ImageFolder loading on files the tests write."""

import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from attnlab.data import build_dataset, list_datasets
from attnlab.data.mnist5k import stratified_split


def test_registry_lists_the_datasets():
    assert {"mnist5k", "cifar10", "cifar100", "imagefolder"} <= set(list_datasets())
    with pytest.raises(ValueError, match="did you mean 'cifar10'"):
        build_dataset("cifar01")


def test_mnist5k_is_a_fixed_stratified_4000_1000_split():
    d = build_dataset("mnist5k")
    assert (len(d.train), len(d.test), d.num_classes, d.in_chans) == (4000, 1000, 10, 1)
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
    assert (len(d.train), len(d.test), d.num_classes, d.image_size) == (40, 8, 10, 32)
    x, y = d.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32


def test_imagefolder(tmp_path):
    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((40, 50, 3), 60 * i, dtype=np.uint8)).save(tmp_path / split / c / f"{i}.png")
    d = build_dataset("imagefolder", root=tmp_path)
    assert d.classes == ["cat", "dog"] and len(d.train) == 6 and len(d.test) == 6
    assert d.image_size == 40 and d.test[0][0].shape == (3, 40, 40)  # the shorter side of its images
    with pytest.raises(FileNotFoundError, match="train"):
        build_dataset("imagefolder", root=tmp_path / "train")
