"""Several labels per text (``--multi-label``): reading "a|b" cells and JSON lists, unknown labels refused by row,
multi-hot targets, the carve by each text's rarest label, the losses, the metrics against scikit-learn, the
threshold chosen on validation, and a run end to end (train, eval, predict) on texts whose labels are keywords."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlab.cli import main
from attnlab.models.text import margin_loss
from attnlab.tasks.text import TEXT_DATA, Text, TextOptions
from attnlab.tasks.text.data import rarest_labels, split_labels
from attnlab.tasks.text.metrics import MultiLabelMetrics, choose_threshold, multilabel_scores
from attnlab.tasks.text.tokens import collate_padded

VOCAB = {
    "food": ["pasta", "bread", "cheese", "soup", "spice", "bake"],
    "music": ["guitar", "song", "piano", "band", "melody", "drum"],
    "sports": ["goal", "match", "team", "score", "coach", "league"],
    "travel": ["train", "hotel", "beach", "flight", "map", "island"],
}
FILLER = ["the", "a", "of", "and", "today", "really", "very", "some"]


def keyword_texts(n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """Texts whose labels are the vocabularies their words come from: two labels on two texts of three."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        labels = sorted(rng.choice(sorted(VOCAB), 2 if i % 3 else 1, replace=False).tolist())
        words = [w for label in labels for w in rng.choice(VOCAB[label], 3)] + rng.choice(FILLER, 3).tolist()
        rng.shuffle(words)
        rows.append((" ".join(words) + f" n{i}", labels))
    return rows


def write_csv(path, rows):
    path.write_text("text,label\n" + "".join(f"{t},{'|'.join(ys)}\n" for t, ys in rows), encoding="utf-8")


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps({"text": t, "label": ys}) + "\n" for t, ys in rows), encoding="utf-8")


def build(tmp_path, **options):
    o = TextOptions(data="textfile", data_dir=str(tmp_path), multi_label=True, min_count=1, **options)
    return TEXT_DATA.build("textfile", o)


def test_label_cells_hold_several_labels():
    assert split_labels("b|a| a |", "|") == ["a", "b"]  # distinct, sorted, blanks dropped
    assert split_labels(["x", "y"], "|") == ["x", "y"] and split_labels("", "|") == [] and split_labels(None, "|") == []
    assert split_labels("a;b", ";") == ["a", "b"]


def test_a_csv_of_a_b_cells_and_a_jsonl_of_lists_give_multi_hot_targets(tmp_path):
    write_csv(tmp_path / "train.csv", [("red apple", ["fruit", "red"]), ("green pear", ["fruit"]), ("a fire", ["red"])])
    write_jsonl(tmp_path / "val.jsonl", [("red cherry", ["fruit", "red"]), ("blue sky", [])])
    d = build(tmp_path)
    assert d.meta["classes"] == ["fruit", "red"] and d.meta["multi_label"] is True
    assert d.source.multi_label and d.source.train_labels == [[0, 1], [0], [1]] and d.source.test_labels == [[0, 1], []]
    x, y = collate_padded([d.train[i] for i in range(3)])
    assert y.dtype == torch.float32 and y.tolist() == [[1, 1], [1, 0], [0, 1]]
    assert [d.test[i][1].tolist() for i in range(2)] == [[1.0, 1.0], [0.0, 0.0]]  # a text may have no label
    assert "1.33 labels per training text" in d.meta["notes"][2]
    (tmp_path / "val.jsonl").unlink()
    write_csv(tmp_path / "val.csv", [("red cherry", ["fruit", "red"])])
    single = TEXT_DATA.build("textfile", TextOptions(data="textfile", data_dir=str(tmp_path), min_count=1))
    assert single.meta["classes"] == ["fruit", "fruit|red", "red"]  # without --multi-label: one label, as before


def test_a_label_training_never_has_is_refused_naming_file_row_and_label(tmp_path):
    write_csv(tmp_path / "train.csv", [("red apple", ["fruit", "red"]), ("green pear", ["fruit"])])
    write_csv(tmp_path / "val.csv", [("red cherry", ["fruit"]), ("blue sky", ["blue", "fruit"])])
    with pytest.raises(ValueError, match=r"val.csv: row 3: label 'blue' never appears in .*train.csv; it knows"):
        build(tmp_path)
    with pytest.raises(ValueError, match="--multi-label: reviews_zh has one label per text"):
        TEXT_DATA.build("reviews_zh", TextOptions(multi_label=True))
    with pytest.raises(ValueError, match="--class-weights balanced: not with --multi-label"):
        TextOptions(multi_label=True, class_weights="balanced")


def test_a_carved_validation_is_stratified_by_each_texts_rarest_label(tmp_path):
    # label counts 3, 2, 2: each text's rarest (ties: the first class); a text without labels its own stratum
    assert rarest_labels([[0, 1], [0], [0, 2], [1, 2], []], 3) == [1, 0, 2, 1, 3]
    rows = keyword_texts(120)
    write_csv(tmp_path / "train.csv", rows[:100])
    write_csv(tmp_path / "test.csv", rows[100:])  # no validation file: carved from training
    task = Text(TextOptions(data="textfile", data_dir=str(tmp_path), multi_label=True, min_count=1))
    data = task.build_data()
    task.meta = data.meta
    carved = task.split_validation(data, 0.2)
    held = carved.split["val"]
    assert len(held) == 20 and not set(held) & set(carved.split["train"])
    labels = data.source.train_labels
    assert {y for i in held for y in labels[i]} == {0, 1, 2, 3}  # every label is in validation
    again = task.split_validation(task.build_data(), 0.2)
    assert again.split == carved.split  # deterministic
    base = task.baselines(carved)["tuned_linear"]  # fitted on the 80 kept texts, chosen on the 20 carved ones
    assert base["model"] == "ovr_logreg" and {"val_micro_f1", "test_micro_f1", "test_hamming_loss"} <= set(base)
    assert np.array(base["test_predictions"]).shape == (20, 4)  # a 0/1 row a test text, for the paired tests


def test_the_margin_loss_takes_multi_hot_targets():
    lengths = torch.rand(5, 4, dtype=torch.float64)
    t = (torch.rand(5, 4) < 0.5).double()
    want = (t * F.relu(0.9 - lengths) ** 2 + 0.5 * (1 - t) * F.relu(lengths - 0.1) ** 2).sum(1).mean()
    torch.testing.assert_close(margin_loss(lengths, t), want)
    index = torch.tensor([0, 3, 1, 2, 2])
    torch.testing.assert_close(margin_loss(lengths, F.one_hot(index, 4).double()), margin_loss(lengths, index))
    with pytest.raises(ValueError, match="multi-hot target must have the lengths' shape"):
        margin_loss(lengths, t[:, :3])


def test_the_mean_and_cls_heads_get_a_sigmoid_per_class(tmp_path):
    task = Text(TextOptions(multi_label=True, head="mean"), meta={"classes": ["a", "b", "c"]})
    logits, t = torch.randn(6, 3), (torch.rand(6, 3) < 0.5).float()
    torch.testing.assert_close(task.loss(logits, t), F.binary_cross_entropy_with_logits(logits, t))
    assert task.monitor == ("val_micro_f1", "max") and task.classifies is True  # label sets kept for paired tests
    assert Text.monitor == ("val_acc", "max")  # the class and single-label runs unchanged
    task = Text(
        TextOptions(multi_label=True, head="capsule"), meta={"classes": ["a", "b", "c"], "fitted": {"threshold": 0.3}}
    )
    lengths = torch.tensor([[0.2, 0.3, 0.9], [0.1, 0.29, 0.31]])
    assert task.predicted_classes(lengths).tolist() == [[0, 1, 1], [0, 0, 1]]  # 0/1 rows at the fitted threshold
    assert Text(TextOptions()).monitor == ("val_acc", "max")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_metrics_are_scikit_learns(seed):
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss

    rng = np.random.default_rng(seed)
    y, p = rng.random((40, 5)) < 0.3, rng.random((40, 5)) < 0.3
    y[:, 4] = p[:, 4] = False  # a class neither true nor predicted: F1 0 in the macro mean (zero_division=0)
    got = multilabel_scores(y, p)
    assert got["micro_f1"] == pytest.approx(f1_score(y, p, average="micro", zero_division=0))
    assert got["macro_f1"] == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    assert got["subset_acc"] == pytest.approx(accuracy_score(y, p))
    assert got["hamming_loss"] == pytest.approx(hamming_loss(y, p))
    # the metric of sums over batches, on capsule lengths (the scores themselves) at a threshold
    scores = torch.from_numpy(np.where(p, 0.5 + 0.5 * rng.random(p.shape), 0.5 * rng.random(p.shape)))
    metric = MultiLabelMetrics(5, head="capsule", threshold=0.5, training=False)
    for rows in np.array_split(np.arange(40), 3):
        metric.update(scores[rows], torch.from_numpy(y[rows]).float(), torch.tensor(0.25))
    scalars, details = metric.compute()
    assert scalars["loss"] == pytest.approx(0.25)
    assert all(scalars[k] == pytest.approx(v) for k, v in got.items())
    assert details["per_class"]["tp"] == (y & p).sum(0).tolist() and details["threshold"] == 0.5
    logits = torch.logit(scores.clamp(1e-6, 1 - 1e-6))  # the other heads: the sigmoid of their logits
    sigmoid = MultiLabelMetrics(5, head="mean", threshold=0.5, training=True)
    sigmoid.update(logits, torch.from_numpy(y).float(), torch.tensor(0.0))
    assert sigmoid.compute()[0] == pytest.approx({k: v for k, v in got.items()})


def test_the_threshold_chosen_on_validation_is_at_least_as_good_as_one_half():
    rng = np.random.default_rng(0)
    y = rng.random((60, 4)) < 0.4
    scores = np.clip(0.35 * y + 0.45 * rng.random(y.shape), 0, 1)  # scores of true labels mostly below 0.5 too
    threshold, f1 = choose_threshold(scores, y)
    assert f1 == pytest.approx(multilabel_scores(y, scores >= threshold)["micro_f1"])
    assert f1 >= multilabel_scores(y, scores >= 0.5)["micro_f1"] and threshold < 0.5


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("multilabel")
    rows = keyword_texts(300)
    write_csv(root / "train.csv", rows[:200])
    write_jsonl(root / "val.jsonl", rows[200:250])
    write_csv(root / "test.csv", rows[250:])
    out = root / "run"
    args = ["train", "--task", "text", "--data", "textfile", "--data-dir", str(root), "--multi-label"]
    args += ["--dim", "16", "--heads", "2", "--epochs", "6", "--batch-size", "16", "--subword-buckets", "0"]
    args += ["--dropout", "0.3", "--token-dropout", "0.15"]  # six epochs: the rate of many texts
    assert main([*args, "--min-count", "1", "--lr", "0.01", "--out", str(out)]) == 0
    return rows[250:], out


def test_a_multi_label_run_learns_and_stores_its_threshold(multilabel_run, capsys):
    from attnlab.engine.run_folder import load_run

    test_rows, out = multilabel_run
    summary = json.loads((out / "summary.json").read_text())
    truth = np.array([[c in ys for c in sorted(VOCAB)] for _, ys in test_rows])
    trivial = multilabel_scores(truth, np.ones_like(truth))["micro_f1"]  # every label on: the best constant (0.59)
    assert trivial < 0.65 and summary["test_micro_f1"] >= 0.85 > trivial + 0.2
    assert summary["monitor"] == "val_micro_f1" and summary["monitor_mode"] == "max"
    assert {"test_macro_f1", "test_subset_acc", "test_hamming_loss"} <= set(summary["test_metrics"])
    base = summary["baselines"]["tuned_linear"]
    assert base["model"] == "ovr_logreg" and base["test_micro_f1"] >= 0.85 and len(base["grid"]) == 3 * 3
    # each test text's labels, the network's and the baseline's, kept in test order for the paired tests
    assert summary["test_targets"] == truth.astype(int).tolist()
    mine, theirs = np.array(summary["test_predictions"]), np.array(base["test_predictions"])
    assert multilabel_scores(truth, mine)["micro_f1"] == pytest.approx(summary["test_micro_f1"])
    assert multilabel_scores(truth, theirs)["micro_f1"] == pytest.approx(base["test_micro_f1"])
    paired = summary["paired"]["tuned_linear"]
    assert paired["micro_f1_diff"] == pytest.approx(summary["test_micro_f1"] - base["test_micro_f1"])
    assert 0 < paired["micro_f1_p"] <= 1 and 0 < paired["p"] <= 1 and paired["n"] == len(test_rows)
    whole = [(x == truth).all(1) for x in (mine, theirs)]
    assert (paired["model_only"], paired["baseline_only"]) == (
        (whole[0] & ~whole[1]).sum(),
        (~whole[0] & whole[1]).sum(),
    )
    fitted = summary["fitted"]
    assert 0.05 <= fitted["threshold"] <= 0.95 and fitted["val_micro_f1"] >= fitted["val_micro_f1_default"]
    run = load_run(out)  # the threshold is in the run's meta: eval and predict use it
    assert run.task.threshold == fitted["threshold"] == run.doc["eval"]["threshold"]
    assert run.doc["best"]["metric"] == "val_micro_f1"  # the checkpoint names the run's monitor, not the class's
    assert main(["eval", "--checkpoint", str(out)]) == 0
    assert f"each label at threshold {fitted['threshold']:g}" in capsys.readouterr().out


def test_predict_prints_every_label_on_with_its_score(multilabel_run, tmp_path, capsys):
    _, out = multilabel_run
    two = "the goal match team pasta bread soup of and really"
    assert main(["predict", "--checkpoint", str(out), "--text", two, "--text", "guitar song piano the of very"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith(("sports length 0.", "food length 0.")) and "food length" in first and "sports" in first
    assert second.startswith("music length 0.") and "," not in second.split("  ")[0]
    csv_file = tmp_path / "p.csv"
    assert main(["predict", "--checkpoint", str(out), "--text", two, "--out", str(csv_file)]) == 0
    header, row = csv_file.read_text(encoding="utf-8").splitlines()
    assert header == "input,labels,length,text" and set(row.split(",")[1].split("|")) == {"food", "sports"}
    assert main(["visualize", "--checkpoint", str(out), "--out", str(tmp_path / "a.html")]) == 2
    assert "not a --multi-label run yet" in capsys.readouterr().err


def test_runs_pretrained_before_the_label_options_keep_their_folder():
    from attnlab.tasks.text.task import ENCODER_FIELDS
    from attnlab.tasks.text.transfer import ADDED_FIELDS, auto_backbone

    o = TextOptions()
    before = tuple(f for f in ENCODER_FIELDS if f not in ADDED_FIELDS)
    assert set(ADDED_FIELDS) <= set(ENCODER_FIELDS) and auto_backbone(o, ENCODER_FIELDS) == auto_backbone(o, before)
    assert auto_backbone(TextOptions(multi_label=True), ENCODER_FIELDS) != auto_backbone(o, ENCODER_FIELDS)
