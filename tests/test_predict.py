"""`attnlab predict` on a user's own files, and `imagefolder` fitting the images it is given."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from test_data import write_folder  # an image folder of random pixels

from attnlab.cli import main
from attnlab.data.mnist5k import read_digits, stratified_split
from attnlab.engine.run_folder import load_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "run"
    assert main(["train", "--epochs", "1", "--batch-size", "64", "--train-limit", "256", "--out", str(out)]) == 0
    return out


def test_a_test_digit_as_a_file_gives_the_models_own_probabilities(run, tmp_path, capsys):
    x, y = read_digits()
    _, test_idx = stratified_split(y)
    i = int(test_idx[0])
    Image.fromarray(x[i].reshape(28, 28).astype(np.uint8)).save(tmp_path / "digit.png")
    assert main(["predict", "--checkpoint", str(run), str(tmp_path / "digit.png"), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    loaded = load_run(run)
    with torch.no_grad():
        probs = loaded.model(loaded.data().test[0][0][None]).softmax(1)[0]
    p, k = probs.topk(2)
    assert line == f"{tmp_path / 'digit.png'}: {k[0].item()} {p[0]:.3f}, {k[1].item()} {p[1]:.3f}"


def test_any_mode_and_size_and_bad_files_named(run, tmp_path, capsys):
    rng = np.random.default_rng(0)
    files = {
        "gray.png": Image.fromarray(rng.integers(0, 255, (40, 30), dtype=np.uint8)),
        "rgb.jpg": Image.fromarray(rng.integers(0, 255, (50, 64, 3), dtype=np.uint8)),
        "rgba.png": Image.fromarray(rng.integers(0, 255, (28, 28, 4), dtype=np.uint8)),
        "deep.png": Image.fromarray(rng.integers(0, 65535, (33, 33), dtype=np.uint16)),
    }
    for name, image in files.items():
        image.save(tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths = [str(tmp_path / n) for n in [*files, "broken.png", "missing.png"]]
    assert main(["predict", "--checkpoint", str(run), *paths, "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "broken.png: not a readable image" in err and "missing.png: no such file" in err
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["input"] for r in rows] == paths[:4]  # every readable file predicted despite the bad ones
    for r in rows:
        probs = [float(r[f"prob{k}"]) for k in (1, 2, 3)]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert r["class1"] in [str(d) for d in range(10)]


def test_predict_needs_inputs(run, capsys):
    assert main(["predict", "--checkpoint", str(run)]) == 2
    assert "INPUT: expected at least one file" in capsys.readouterr().err


def test_small_imagefolder_trains_at_its_size_with_the_imagenet_stem(tmp_path, capsys):
    write_folder(tmp_path / "data", 32)
    out = tmp_path / "run"
    args = ["--data", "imagefolder", "--data-dir", str(tmp_path / "data"), "--no-hflip", "--epochs", "1"]
    assert main(["train", *args, "--batch-size", "8", "--attention", "se", "--out", str(out)]) == 0
    assert "imagefolder: 32×32 px" in capsys.readouterr().out
    loaded = load_run(out)
    assert loaded.meta["stem"] == "imagenet" and loaded.meta["image_size"] == 32
    assert loaded.model.conv1.stride == (2, 2)  # on a CPU budget the ImageNet stem wins at 32 px too (measured)
    assert main(["predict", "--checkpoint", str(out), str(tmp_path / "data" / "val" / "a" / "0.png")]) == 0
    assert main(["train", "--data", "mnist5k", "--image-size", "64", "--out", str(tmp_path / "x")]) == 2
    assert "--image-size: data set 'mnist5k' does not take it" in capsys.readouterr().err
