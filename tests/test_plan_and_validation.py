"""The recipe planned from the data size (engine.plan), the validation split, early stopping, test scored once."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import fake_task  # noqa: E402  (registers fake_max and fake_min)

from attnlab.cli import main  # noqa: E402
from attnlab.data.splits import VAL_SEED, stratified_indices  # noqa: E402
from attnlab.engine.config import Recipe, TrainConfig  # noqa: E402
from attnlab.engine.plan import MIN_BATCH, plan_recipe  # noqa: E402
from attnlab.engine.trainer import build_data  # noqa: E402

history = fake_task.history


# -- the plan ---------------------------------------------------------------------------------------------------
CLASSIFY = Recipe(samples_seen=54_000, base_batch=256, base_lr=0.2, optimizer="sgd")


def test_the_default_data_keeps_the_recipe():
    plan = plan_recipe(CLASSIFY, 3600, "images")
    assert (plan.recipe.epochs, plan.recipe.batch_size, plan.recipe.lr) == (15, 256, 0.2)
    assert plan.note.startswith("recipe: 3,600 training images → batch 256 (the recipe's), lr 0.2")


@pytest.mark.parametrize("n", [50, 300, 1008, 2000])
def test_small_data_gets_a_smaller_batch_its_lr_and_the_same_samples(n):
    r = plan_recipe(CLASSIFY, n).recipe
    steps = math.ceil(n / r.batch_size)
    assert steps >= 10 or r.batch_size == MIN_BATCH  # the floor on steps an epoch
    assert r.batch_size == 2 ** int(math.log2(r.batch_size)) and MIN_BATCH <= r.batch_size < 256
    assert r.batch_size * 2 > n / 10 or r.batch_size == MIN_BATCH  # the largest power of two that keeps the floor
    assert r.lr == pytest.approx(0.2 * r.batch_size / 256)  # SGD: the linear rule
    assert r.epochs == min(100, round(54_000 / n))  # samples seen, at most max_epochs


def test_adamw_scales_by_the_square_root_and_given_values_win():
    adamw = Recipe(samples_seen=56_000, base_batch=64, base_lr=2e-3)
    r = plan_recipe(adamw, 612).recipe
    assert r.batch_size == 32 and r.lr == pytest.approx(2e-3 * math.sqrt(0.5)) and r.epochs == 92
    given = plan_recipe(Recipe(epochs=3, batch_size=100, lr=0.5, samples_seen=56_000), 612)
    assert (given.recipe.epochs, given.recipe.batch_size, given.recipe.lr) == (3, 100, 0.5)
    assert "(--batch-size)" in given.note and "(--lr)" in given.note and "(--epochs)" in given.note
    only_batch = plan_recipe(Recipe(batch_size=16, base_batch=64, base_lr=1e-3, optimizer="sgd"), 5000).recipe
    assert only_batch.lr == pytest.approx(1e-3 / 4)  # a batch given alone: the rule scales its lr
    big = plan_recipe(adamw, 1_000_000).recipe
    assert big.epochs == 1 and big.batch_size == 64  # at least one epoch


def test_plan_refuses_an_empty_split_and_the_recipe_bad_values():
    with pytest.raises(ValueError, match="training split is empty"):
        plan_recipe(Recipe(), 0)
    with pytest.raises(ValueError, match="--val-fraction: expected a number in"):
        Recipe(val_fraction=0.9)
    with pytest.raises(ValueError, match="--early-stop"):
        Recipe(early_stop=-1)


# -- the validation split ---------------------------------------------------------------------------------------
def test_stratified_indices_hold_out_each_class_and_at_least_one():
    labels = [0] * 50 + [1] * 30 + [2] * 3
    kept, held = stratified_indices(labels, 0.1, 0, at_least_one=True)
    assert sorted([*kept, *held]) == list(range(83)) and not set(kept) & set(held)
    counts = np.bincount(np.asarray(labels)[held], minlength=3)
    assert counts.tolist() == [5, 3, 1]  # 10 % of each class, one of the smallest
    again = stratified_indices(labels, 0.1, 0, at_least_one=True)
    assert np.array_equal(kept, again[0]) and np.array_equal(held, again[1])


def test_mnist5k_validation_is_carved_without_augmentation_and_whatever_the_seed():
    datas = [build_data(c, c.new_task()) for c in (TrainConfig.create(seed=s) for s in (0, 7))]
    a, b = datas
    assert a.split == b.split  # the fixed VAL_SEED: seeds are compared on the same validation digits
    assert len(a.val) == 400 and len(a.train) == 3600 and not set(a.split["train"]) & set(a.split["val"])
    assert np.bincount(np.asarray([a.val[i][1] for i in range(len(a.val))])).tolist() == [40] * 10
    x0, _ = a.val[0]
    assert torch.equal(x0, a.val[0][0])  # evaluation transform: no random shift
    i = a.split["val"][0]
    source = TrainConfig.create().new_task().build_data()
    assert torch.equal(x0, source.train_eval[i][0])
    assert VAL_SEED == 0


def _image_folder(root: Path, splits: dict[str, int]) -> None:
    rng = np.random.default_rng(0)
    for split, n in splits.items():
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for k in range(n):
                value = 40 if c == "a" else 200
                pixels = np.clip(rng.normal(value, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{k}.png")


def test_imagefolder_val_is_the_test_split_unless_a_test_folder_exists(tmp_path):
    two, three = tmp_path / "two", tmp_path / "three"
    _image_folder(two, {"train": 20, "val": 6})
    _image_folder(three, {"train": 20, "val": 6, "test": 4})
    for root, sizes in ((two, (36, 4, 12)), (three, (40, 12, 8))):
        config = TrainConfig.create("classify", data="imagefolder", data_dir=str(root), attention=None)
        data = build_data(config, config.new_task())
        assert (len(data.train), len(data.val), len(data.test)) == sizes
        said = " ".join(data.meta["notes"])
        assert ("val is the test split (scored once, at the end); validation is carved from train" in said) == (
            root == two
        )


def test_textfile_three_files_and_leaks_dropped(tmp_path):
    rows = lambda items: "text,label\n" + "".join(f"{t},{y}\n" for t, y in items)  # noqa: E731
    (tmp_path / "train.csv").write_text(
        rows(
            [(f"good {i}", "pos") for i in range(20)]
            + [(f"bad {i}", "neg") for i in range(20)]
            + [("good 0", "pos"), ("shared", "pos")]
        )
    )
    (tmp_path / "val.csv").write_text(rows([("good 100", "pos"), ("bad 100", "neg"), ("twice", "pos")]))
    (tmp_path / "test.csv").write_text(rows([("shared", "pos"), ("bad 200", "neg"), ("twice", "pos")]))
    config = TrainConfig.create("text", data="textfile", data_dir=str(tmp_path))
    data = build_data(config, config.new_task())
    texts = data.source
    assert len(texts.train_texts) == 40 and "shared" not in texts.train_texts  # a repeat and a test text dropped
    assert texts.val_texts == ["good 100", "bad 100"] and len(data.val) == 2 and len(data.test) == 3
    assert data.split is None  # the data's own validation: nothing carved


# -- early stopping and the test split --------------------------------------------------------------------------
def test_early_stop_stops_on_validation_and_tests_the_best_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--task", "fake_min", "--epochs", "12", "--lr", "0.8", "--noise", "2.5", "--early-stop", "2"]
    assert main([*args, "--out", str(out)]) == 0
    rows = history(out)
    losses = [r["val_loss"] for r in rows]
    best = losses.index(min(losses)) + 1
    assert len(rows) == best + 2 < 12  # two epochs without a better validation loss, then stop
    assert "early stop: no better val_loss in 2 epochs" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_early"] and summary["best_epoch"] == best and summary["epochs"] == len(rows)
    assert json.loads((out / "best.json").read_text())["epoch"] == best
    # resuming a stopped run trains nothing more and scores the same test figure
    assert main([*args, "--out", str(out), "--resume"]) == 0
    assert len(history(out)) == len(rows)
    assert json.loads((out / "summary.json").read_text())["test_metrics"] == summary["test_metrics"]


def test_folder_splits_follow_one_rule(tmp_path):
    from attnlab.data.layout import a_folder, find_splits

    for names, val, test in ((("train", "valid", "test"), "valid", "test"), (("train", "test"), None, "test")):
        root = tmp_path / "-".join(names)
        for n in names:
            (root / n).mkdir(parents=True)
        paths = find_splits(root, a_folder, "train/ and val/")
        assert (paths.val.name if paths.val else None, paths.test.name) == (val, test)
        assert ("carved from train" in paths.note) == (val is None)
    (tmp_path / "only" / "train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="a held-out split named val, valid, validation or test"):
        find_splits(tmp_path / "only", a_folder, "train/ and val/")


def test_segmentation_validation_is_whole_images_or_strips_never_overlapping_crops():
    from attnlab.tasks.segment.data import MIN_VAL_ROWS, TrainingImages, carve_strips
    from attnlab.tasks.segment.labels import label_scheme

    rng = np.random.default_rng(0)
    scheme = label_scheme(1)

    def images(n, h):
        return [
            (rng.random((1, h, 64)).astype(np.float32), (rng.random((h, 64)) > 0.5).astype(np.int64)) for _ in range(n)
        ]

    few = TrainingImages(images(2, 200), scheme, crop=32, samples=8, conditions=["clean"])
    crops, val, note = carve_strips(few, 0.1)
    assert len(val) == 2 and "bottom 0.1 of the rows" in note
    assert [m.shape[0] for m in crops.masks] == [180, 180] and val[0][1].shape == (20, 64)
    thin = TrainingImages(images(2, 40), scheme, crop=32, samples=8, conditions=["clean"])
    with pytest.raises(ValueError, match="--val-fraction: no training image is tall enough"):
        carve_strips(thin, 0.1)  # 40 rows: a crop of 32 leaves fewer than MIN_VAL_ROWS
    assert MIN_VAL_ROWS == 16
    many = TrainingImages(images(10, 64), scheme, crop=32, samples=8, conditions=["clean"])
    crops, val, note = carve_strips(many, 0.2)
    assert len(val) == 2 and len(crops.masks) == 8 and "whole" in note


def test_precision_auto_is_bf16_only_where_it_pays(monkeypatch):
    from attnlab.engine import precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert precision.resolve_precision("auto", cpu, True) == ("bf16", "auto: avx512_bf16 on this CPU")
    assert precision.resolve_precision("auto", cpu, False)[0] == "fp32"  # text: slower under bf16 (measured)
    assert precision.resolve_precision("auto", cuda, False) == ("bf16", "auto: CUDA")
    assert precision.resolve_precision("fp32", cpu, True) == ("fp32", "--precision")
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    assert precision.resolve_precision("auto", cpu, True) == ("fp32", "auto: this CPU has no bfloat16 instructions")
    with precision.autocast(cpu, "bf16"):
        assert torch.nn.functional.linear(torch.ones(2, 4), torch.ones(3, 4)).dtype == torch.bfloat16
    with precision.autocast(cpu, None):  # no run: float32 on CPU
        assert torch.nn.functional.linear(torch.ones(2, 4), torch.ones(3, 4)).dtype == torch.float32


def test_a_run_records_its_precision_and_eval_uses_it(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--epochs", "1", "--batch-size", "32", "--train-limit", "64", "--precision", "bf16"]
    assert main([*args, "--attention", "se", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plan"]["precision"] == "bf16" and summary["precision"] == "bf16"
    assert main(["eval", "--checkpoint", str(out)]) == 0
    assert json.loads((out / "eval.json").read_text())["metrics"] == pytest.approx(summary["test_metrics"])
