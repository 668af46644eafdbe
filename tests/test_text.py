"""Text classification: routing by hand, squash, padding invariance, the data's hygiene (the real split code),
textfile's refusals, the metric against scikit-learn, and the task end to end (train, predict, visualize,
export)."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from sentiment import write_sentiment

import attnlab
from attnlab.cli import main
from attnlab.engine.evaluation import evaluate_run
from attnlab.models.text import CapsuleHead, margin_loss, squash
from attnlab.models.text_ensemble import members_of
from attnlab.tasks.text import TEXT_DATA, TextOptions
from attnlab.tasks.text.data import deduplicate, distinct_split, stratified_indices
from attnlab.tasks.text.metrics import TextMetrics

F64 = torch.float64


def test_squash_keeps_direction_and_maps_lengths_below_one():
    s = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], dtype=F64)
    v = squash(s)
    assert v[0].norm().item() == pytest.approx(25 / 26)  # |s|² / (1 + |s|²) with |s| = 5
    torch.testing.assert_close(v[0] / v[0].norm(), s[0] / 5)
    assert v[1].abs().max() == 0 and (v.norm(dim=-1) < 1).all()


def test_routing_on_a_hand_computed_two_input_two_class_example():
    head = CapsuleHead(4, 2, primary=1, primary_dim=2, class_dim=2, iterations=3).double()
    w = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.2, 0.0], [0.0, 1.0]]])  # W_0 = identity, W_1 = diag(0.2, 1)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(w)[None])
    u = torch.tensor([[[[0.6, 0.0], [0.5, 0.1]]]], dtype=F64)  # (B=1, P=1, L=2, d_p=2): two input capsules
    with torch.no_grad():
        v, c = head.route(u)
    # by hand: û_j|i = W_j u_i; b = 0 -> c = 1/2 everywhere at first
    inputs = [np.array([0.6, 0.0]), np.array([0.5, 0.1])]
    uh = {j: [w[j] @ x for x in inputs] for j in range(2)}

    def sq(x):
        n2 = x @ x
        return x * n2 / (1 + n2) / math.sqrt(n2 + 1e-8)  # Eq. 1, with the implementation's ε against 0/0

    b = np.zeros((2, 2))  # (input i, class j)
    for r in range(3):
        cc = np.exp(b) / np.exp(b).sum(1, keepdims=True)
        vv = {j: sq(sum(cc[i, j] * uh[j][i] for i in range(2))) for j in range(2)}
        if r < 2:
            b = b + np.array([[uh[j][i] @ vv[j] for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(v[0].numpy(), np.stack([vv[0], vv[1]]), rtol=1e-12)
    np.testing.assert_allclose(c[0, 0].numpy(), cc, rtol=1e-12)
    assert c[0, 0, 0, 0] > c[0, 0, 0, 1]  # input 0 lies along class 0's prediction: routing sends it there


def test_margin_loss_is_the_papers():
    lengths = torch.tensor([[0.95, 0.3]], dtype=F64)
    # target 0: max(0, 0.9 − 0.95)² + 0.5 · max(0, 0.3 − 0.1)² = 0.02
    assert margin_loss(lengths, torch.tensor([0])).item() == pytest.approx(0.02)


@pytest.mark.parametrize("head", ["capsule", "mean", "cls"])
def test_scores_do_not_depend_on_padding_and_empty_rows_give_no_nan(head):
    torch.manual_seed(0)
    model = (
        attnlab.create_model(
            "text_transformer",
            vocab_size=50,
            num_classes=3,
            dim=16,
            depth=2,
            heads=2,
            head=head,
            ngram_buckets=31,
            max_len=40,
            orphan=head == "capsule",
        )
        .double()
        .eval()
    )
    text = torch.tensor([[5, 9, 3, 7, 2]])
    alone = model(text)
    batch = torch.zeros(3, 12, dtype=torch.int64)
    batch[0, :5] = text[0]
    batch[1] = torch.arange(2, 14)  # a longer text adds padding to the first row
    with torch.no_grad():
        torch.testing.assert_close(model(batch)[0], alone[0].detach(), rtol=1e-10, atol=1e-12)
        assert torch.isfinite(model(batch)).all()  # row 2 is all padding
    model.train()
    loss = model(batch[:2]).sum()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing  # gradients reach every parameter


def test_capsule_head_costs_little_beyond_mean_pooling():
    # the same encoder: the heads differ only in what follows it (a parameter count check, not a timing)
    caps = attnlab.create_model("text_transformer", head="capsule", ngram_buckets=0)
    mean = attnlab.create_model("text_transformer", head="mean", ngram_buckets=0)
    extra = sum(p.numel() for p in caps.head.parameters())
    assert extra == 128 * 64 + 64 + 8 * 2 * 16 * 8  # W_p (and bias), W_ij
    assert sum(p.numel() for p in caps.parameters()) - extra == sum(p.numel() for p in mean.parameters()) - 258


def test_reviews_zh_is_deduplicated_before_a_disjoint_split():
    data = TEXT_DATA.build("reviews_zh", TextOptions())
    d = data.source
    assert len(d.train_texts) + len(d.test_texts) == 17363
    assert not set(d.train_texts) & set(d.test_texts)  # no text in both splits
    assert len(set(d.train_texts)) == len(d.train_texts)
    assert "47 texts under both labels dropped" in data.meta["notes"][0]
    share = np.mean(d.test_labels)
    assert abs(share - np.mean(d.train_labels)) < 0.01 and len(d.test_texts) == 1736
    assert len(data.train) == len(d.train_texts) and len(data.test) == 1736
    # 15,627 training texts: the rates the default was tuned with, one network (few_labels' rule leaves it alone)
    assert (data.meta["dropout"], data.meta["token_dropout"], data.meta["members"]) == (0.3, 0.15, 1)


def test_deduplicate_and_stratified_indices():
    texts, labels, dupes, conflicting = deduplicate(["a", "b", "a", "c", "c"], ["x", "y", "x", "x", "y"])
    assert (texts, labels, dupes, conflicting) == (["a", "b"], ["x", "y"], 2, 1)
    train, test = stratified_indices([0, 1] * 10, 0.2, seed=0)
    assert not set(train) & set(test) and len(test) == 4


def test_the_split_keeps_each_text_in_one_split_and_drops_conflicting_labels():
    # many repeats (each text 1-4 times) and 5 texts seen under both labels: the code reviews_zh splits with
    rng = np.random.default_rng(1)
    label_of = {f"t{i}": ["neg", "pos"][i % 2] for i in range(60)}
    texts = [t for t in label_of for _ in range(int(rng.integers(1, 5)))]
    labels = [label_of[t] for t in texts]
    conflicts = [f"t{i}" for i in range(5)]
    texts, labels = texts + conflicts, labels + [["pos", "neg"][i % 2] for i in range(5)]  # the other label
    order = rng.permutation(len(texts))
    texts, labels = [texts[i] for i in order], [labels[i] for i in order]
    s, note = distinct_split(texts, labels, ["neg", "pos"], 0.25, seed=0)
    assert not set(s.train_texts) & set(s.test_texts)  # no text in two splits
    assert len(set(s.train_texts)) == len(s.train_texts) and len(set(s.test_texts)) == len(s.test_texts)
    assert sorted(s.train_texts + s.test_texts) == sorted(set(label_of) - set(conflicts))  # conflicting: dropped
    for t, y in zip(s.train_texts + s.test_texts, s.train_labels + s.test_labels, strict=True):
        assert s.classes[y] == label_of[t]
    assert len(s.test_texts) == 14 and sum(s.test_labels) == 7  # round(0.25 · 27) and round(0.25 · 28)
    assert f"{len(texts)} lines" in note and "5 texts under both labels dropped: 55 distinct texts" in note


def test_the_metric_matches_scikit_learn_and_averages_the_given_loss():
    from sklearn.metrics import accuracy_score, f1_score

    g = torch.Generator().manual_seed(0)
    metric, truth, pred, loss_n = TextMetrics(4, training=False), [], [], 0.0
    for n in (50, 37, 64):
        output, target = torch.randn(n, 4, generator=g), torch.randint(0, 4, (n,), generator=g)
        loss = torch.rand((), generator=g)  # any number: the metric averages what it is given
        metric.update(output, target, loss)
        truth += target.tolist()
        pred += output.argmax(1).tolist()
        loss_n += loss.item() * n
    scalars, details = metric.compute()
    assert scalars["acc"] == pytest.approx(accuracy_score(truth, pred), abs=1e-12)
    assert scalars["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro"), abs=1e-12)
    assert scalars["loss"] == pytest.approx(loss_n / len(truth), rel=1e-12)
    assert np.array(details["confusion"]).sum() == len(truth)
    training = TextMetrics(4, training=True)
    training.sums = metric.sums
    assert set(training.compute()[0]) == {"acc", "macro_f1"}  # the engine reports training's loss itself


def write_csv(path, rows, header="text,label"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_textfile_refuses_bad_input_naming_it(tmp_path):
    def build(**options):
        return TEXT_DATA.build("textfile", TextOptions(data="textfile", data_dir=str(tmp_path), **options))

    good = [f"好{i} 书,pos" for i in range(6)] + [f"差{i} 书,neg" for i in range(6)]
    write_csv(tmp_path / "train.csv", good)
    write_csv(tmp_path / "val.csv", good[:2] + good[-2:])
    d = build(min_count=1)
    # the four training texts that are also in val.csv (the test split here) are dropped from training
    assert d.meta["classes"] == ["neg", "pos"] and len(d.source.train_texts) == 8 and len(d.test) == 4
    assert not set(d.source.train_texts) & set(d.source.test_texts) and "4 training texts dropped" in d.meta["notes"][0]
    (tmp_path / "val.csv").write_bytes("text,label\n好书,pos\n".encode() + b"\xff\xfe bad,neg\n")
    with pytest.raises(ValueError, match=r"val.csv: line 3 is not UTF-8"):
        build()
    write_csv(tmp_path / "val.csv", ["好书,great"])
    with pytest.raises(ValueError, match=r"labels \['great'\] never appear in .*train.csv"):
        build()
    write_csv(tmp_path / "val.csv", ["好书,pos", ",neg"])
    with pytest.raises(ValueError, match="row 3 has an empty text"):
        build()
    with pytest.raises(ValueError, match=r"--label-col: .*train.csv has no column 'sentiment'"):
        build(label_col="sentiment")


def test_text_options_are_checked(tmp_path, capsys, monkeypatch):
    assert main(["train", "--task", "text", "--max-len", "0", "--out", str(tmp_path / "a")]) == 2
    assert "--max-len: expected int >= 1, got 0" in capsys.readouterr().err
    assert main(["train", "--task", "text", "--ngram-buckets", "1", "--out", str(tmp_path / "a")]) == 2
    assert "--ngram-buckets: expected 0 (none) or at least 2 buckets, got 1" in capsys.readouterr().err
    import builtins

    real_import = builtins.__import__

    def no_jieba(name, *args, **kwargs):
        if name == "jieba":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jieba)
    assert main(["train", "--task", "text", "--tokenizer", "jieba", "--out", str(tmp_path / "b")]) == 2
    assert "--tokenizer jieba: the jieba package is not installed; pip install jieba" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    write_sentiment(root, 160, 128, text_col="review", label_col="stars")
    out = root / "run"
    args = ["train", "--task", "text", "--data", "textfile", "--data-dir", str(root), "--text-col", "review"]
    args += ["--label-col", "stars", "--dim", "16", "--heads", "2", "--epochs", "6", "--batch-size", "16"]
    assert main([*args, "--min-count", "1", "--lr", "0.01", "--out", str(out)]) == 0
    return root, out


def test_text_run_learns_and_reports_the_baseline(text_run):
    _, out = text_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_val_acc"] >= 0.9  # sentiment carried by single characters: easy
    assert summary["baselines"]["tuned_linear"]["test_acc"] >= 0.9
    paired = summary["paired"]["tuned_linear"]
    assert paired["n"] == summary["splits"]["test"] and 0 <= paired["p"] <= 1
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"val_acc", "val_macro_f1", "train_acc", "texts_per_s"} <= set(record)


def test_the_length_texts_are_cut_to_is_measured_on_the_training_texts(text_run, capsys):
    from attnlab.engine.run_folder import load_run
    from attnlab.tasks.text.data import measured_length

    assert measured_length([10] * 98 + [300, 301])[0] == 16  # 98 % are 10 tokens long: a multiple of 16
    assert measured_length([10] * 97 + [300, 301, 302])[0] == 304  # the 98th text is 300 tokens long
    assert measured_length([1000] * 10)[0] == 512  # never longer than 512 (attention's cost is L²)
    _, out = text_run
    run = load_run(out)  # texts of 7 characters: 16, saved with the run and the model built for it
    assert run.task.meta["max_len"] == 16 and run.task.max_len == 16 and run.model.max_len == 16
    assert main(["predict", "--checkpoint", str(out), "--text", "好" * 40]) == 0  # longer texts are cut, not refused
    assert capsys.readouterr().out.startswith("high probability ")


def test_text_predict_visualize_export(text_run, tmp_path, capsys):
    from attnlab.engine.run_folder import load_run
    from attnlab.tasks.text.pictures import token_weights

    root, out = text_run
    assert main(["predict", "--checkpoint", str(out), "--text", "好棒喜欢的书", "--text", "差烂失望"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("high probability ") and lines[1].startswith("low probability ")  # calibrated
    assert " length " in lines[0] and " length " in lines[1]  # capsule: its length too
    csv_file = tmp_path / "p.csv"
    assert main(["predict", "--checkpoint", str(out), "--text", "好棒喜欢的书", "--out", str(csv_file)]) == 0
    header, row = csv_file.read_text(encoding="utf-8").splitlines()
    assert header == "input,label,length,probability,text" and row.startswith("好棒喜欢的书,high,0.")
    page = tmp_path / "att.html"
    assert main(["visualize", "--checkpoint", str(out), "--images", "3", "--out", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert html.count("<tr>") == 4 and 'charset="utf-8"' in html and "span style" in html
    assert (tmp_path / "att.png").is_file()
    run = load_run(out)
    networks = members_of(run.model)  # the defaults on 128 training texts: an ensemble of 3
    assert len(networks) == 3 and run.task.meta["subword_buckets"] == 0 and networks[0].subword is None  # characters
    data = run.data()
    # the page's confusion is the task's metric over the test split: the one the run saved for its best epoch
    assert evaluate_run(run)["details"]["confusion"] == run.doc["eval"]["confusion"]
    ids = data.test[0][0][None]
    received, routing, scores = token_weights(run.model, ids)
    assert received.shape == routing.shape == (ids.shape[1],) and received.sum() == pytest.approx(1, abs=1e-5)
    torch.testing.assert_close(scores, run.model(ids)[0].detach())
    ort = pytest.importorskip("onnxruntime")
    onnx = tmp_path / "text.onnx"
    assert main(["export", "--checkpoint", str(out), "--format", "onnx", "--out", str(onnx)]) == 0
    session = ort.InferenceSession(str(onnx))
    for shape in ((1, 5), (3, 17)):  # dynamic batch and length
        ids = torch.randint(1, 10, shape)
        got = session.run(None, {"input": ids.numpy()})[0]
        with torch.no_grad():
            np.testing.assert_allclose(got, run.model(ids).numpy(), rtol=1e-4, atol=1e-5)


def test_auto_tokenizer_reads_chinese_by_character_and_english_by_word():
    from attnlab.tasks.text.tokens import TOKENIZERS, choose_tokenizer

    assert choose_tokenizer(["这本书写得真好", "质量很差, 不推荐"])[0] == "char"
    name, why = choose_tokenizer(["The function returns an array.", "Plot the data, then save it."])
    assert name == "words" and "0 % of the training texts' characters are CJK" in why
    assert choose_tokenizer(["한국어 문장은 띄어쓰기를 한다"])[0] == "words"  # Hangul has spaces between words
    assert TOKENIZERS.get("words")("Don't panic: x2 + y_3!") == ["don", "t", "panic", "x2", "y_3"]


def test_balanced_class_weights_weight_each_texts_loss_by_its_class(tmp_path):
    from attnlab.models.text import margin_loss
    from attnlab.tasks.text.data import balanced_weights
    from attnlab.tasks.text.task import Text, TextOptions

    assert balanced_weights([0, 0, 0, 1], 3) == [4 / 6, 2.0, 0.0]  # n / (K n_k), K = 2 classes seen; unseen: 0
    lengths, target = torch.tensor([[0.8, 0.3], [0.2, 0.7], [0.6, 0.1]]), torch.tensor([0, 1, 0])
    # by hand: 0.1² + 0.5 · 0.2² = 0.03; 0.2² + 0.5 · 0.1² = 0.045; 0.3² = 0.09
    assert margin_loss(lengths, target).item() == pytest.approx((0.03 + 0.045 + 0.09) / 3)
    weighted = margin_loss(lengths, target, weight=torch.tensor([0.5, 2.0]))
    assert weighted.item() == pytest.approx((0.5 * 0.03 + 2 * 0.045 + 0.5 * 0.09) / 3)  # / the weights' sum
    rows = ["text,label", "好的,high", "好书,high", "好棒,high", "差,low"]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "val.csv").write_text("text,label\n好,high\n", encoding="utf-8")
    options = {"data": "textfile", "data_dir": str(tmp_path), "head": "mean"}
    data = Text(TextOptions(class_weights="balanced", **options)).build_data()
    assert data.meta["class_weights"] == [4 / 6, 2.0]  # classes sorted: high (3 texts), low (1)
    task = Text(TextOptions(class_weights="balanced", **options), meta=data.meta)
    logits = torch.tensor([[1.0, -1.0], [0.5, 0.2], [-0.3, 0.9]])
    expected = F.cross_entropy(logits, target, weight=torch.tensor([4 / 6, 2.0]))
    assert task.loss(logits, target).item() == pytest.approx(expected.item())
    assert "class_weights" not in Text(TextOptions(**options)).build_data().meta  # none: every text alike
