"""Temperature scaling (Guo et al., ICML 2017) and the expected calibration error, and predict's calibrated
probability: T recovered from over-confident logits against a brute-force float64 grid, ECE by hand, a short text
run whose predict gives softmax(scores / T) with the accuracy unchanged, and a run made before calibration that
predicts as it did."""

import argparse
import csv
import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from sentiment import write_sentiment

from attnlab.cli import main
from attnlab.engine.checkpoint import load_checkpoint
from attnlab.engine.run_folder import load_run
from attnlab.tasks.calibration import (
    TEMPERATURE_BOUNDS,
    calibrate,
    calibrated_probabilities,
    expected_calibration_error,
    fit_temperature,
    temperature_nll,
)
from attnlab.tasks.text.predict import format_prediction, predict_texts
from attnlab.tasks.text.tokens import Vocabulary, encode

F64 = torch.float64


def over_confident(n=4_000, k=5, scale=5.0, seed=0):
    """Logits ``scale`` × the true ones, labels drawn from softmax(true logits): the best T is ``scale``."""
    g = torch.Generator().manual_seed(seed)
    true = 1.5 * torch.randn(n, k, generator=g, dtype=F64)
    labels = torch.multinomial(true.softmax(1), 1, generator=g)[:, 0]
    return scale * true, labels


def test_fit_temperature_recovers_the_over_confidence_at_a_real_minimum():
    scores, labels = over_confident()
    t = fit_temperature(scores, labels)
    assert abs(t - 5.0) < 0.3  # 4,000 labels drawn at random: seeds 0-5 give 4.92 … 5.14
    nll = temperature_nll(scores, labels, t)
    for step in (1e-3, 1e-2):  # a minimum: a small step either way is no better
        assert nll <= temperature_nll(scores, labels, t * math.exp(step))
        assert nll <= temperature_nll(scores, labels, t * math.exp(-step))
    # brute force: 2,001 temperatures, equally spaced in log T over [2, 12], in float64
    grid = torch.linspace(math.log(2.0), math.log(12.0), 2_001, dtype=F64)
    losses = []
    for chunk in grid.split(200):  # (G, N, K) at a time
        logp = torch.log_softmax(scores[None] / chunk.exp()[:, None, None], 2)
        losses.append(-logp.gather(2, labels[None, :, None].expand(len(chunk), -1, 1)).mean((1, 2)))
    losses = torch.cat(losses)
    i = int(losses.argmin())
    assert 0 < i < len(grid) - 1 and abs(math.log(t) - grid[i].item()) <= (grid[1] - grid[0]).item()
    assert nll <= losses[i].item() + 1e-12
    assert fit_temperature(scores, labels) == t  # deterministic, to the bit
    assert fit_temperature(scores.float(), labels) == pytest.approx(t, rel=1e-5)  # float32 scores: the same T


def test_calibrate_lowers_the_nll_and_never_changes_the_argmax():
    scores, labels = over_confident(n=2_000, k=3, scale=3.0, seed=1)
    c = calibrate(scores, labels)
    assert set(c) == {"temperature", "val_nll_before", "val_nll_after", "val_ece_before", "val_ece_after"}
    assert c["val_nll_after"] < c["val_nll_before"] and c["val_ece_after"] < c["val_ece_before"]
    assert c["val_nll_before"] == pytest.approx(temperature_nll(scores, labels, 1.0), abs=1e-15)
    probs = calibrated_probabilities(scores, c["temperature"])
    torch.testing.assert_close(probs.sum(1), torch.ones(len(labels), dtype=F64))
    assert torch.equal(probs.argmax(1), scores.argmax(1))  # accuracy unchanged


def test_fit_temperature_at_its_edges_and_refusals():
    labels = torch.tensor([0, 1, 1, 0])
    separated = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.2, 0.9], [0.7, 0.1]])  # every argmax right
    assert fit_temperature(separated, labels) == pytest.approx(TEMPERATURE_BOUNDS[0], rel=1e-9)
    assert fit_temperature(torch.zeros(4, 3), labels) == 1.0  # the NLL does not depend on T
    with pytest.raises(ValueError, match=r"scores: expected a \(N, K\) tensor"):
        fit_temperature(torch.zeros(4), labels)
    with pytest.raises(ValueError, match=r"targets: expected shape \(4,\)"):
        fit_temperature(separated, labels[:3])
    with pytest.raises(ValueError, match=r"targets: expected classes in \[0, 2\), got 0 … 2"):
        fit_temperature(separated, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="scores: expected finite values"):
        fit_temperature(torch.tensor([[math.nan, 0.0]] * 4), labels)
    with pytest.raises(ValueError, match="temperature: expected a number > 0, got 0"):
        calibrated_probabilities(separated, 0)
    with pytest.raises(ValueError, match="temperature: expected a number > 0, got -1"):
        temperature_nll(separated, labels, -1)
    with pytest.raises(ValueError, match=r"bounds: expected 0 < low < high, got \(0, 1\)"):
        fit_temperature(separated, labels, bounds=(0, 1))


def test_ece_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.95, 0.05], [0.35, 0.65], [0.88, 0.12]], dtype=F64)
    targets = torch.tensor([0, 1, 1, 1])  # right, wrong, right, wrong
    # bins of width 1/15: 0.9 and 0.88 in (13/15, 14/15] (acc 1/2, conf 0.89), 0.95 in (14/15, 1] (acc 0),
    # 0.65 in (9/15, 10/15] (acc 1): 2/4 · 0.39 + 1/4 · 0.95 + 1/4 · 0.35
    assert expected_calibration_error(probs, targets) == pytest.approx(0.52, abs=1e-12)
    assert expected_calibration_error(probs, targets, bins=1) == pytest.approx(abs(0.5 - 0.845), abs=1e-12)
    assert expected_calibration_error(torch.tensor([[1.0, 0.0]] * 3, dtype=F64), torch.tensor([0, 0, 0])) == 0
    # against a loop over the bins ((m - 1) / M, m / M], on random probabilities
    g = torch.Generator().manual_seed(0)
    p = torch.randn(500, 4, generator=g, dtype=F64).mul(2).softmax(1)
    y = torch.randint(0, 4, (500,), generator=g)
    conf, pred = p.max(1)
    ece = 0.0
    for m in range(1, 16):
        inside = (conf > (m - 1) / 15) & (conf <= m / 15)
        if inside.any():
            acc = (pred[inside] == y[inside]).double().mean()
            ece += inside.sum().item() / 500 * abs(acc - conf[inside].mean()).item()
    assert expected_calibration_error(p, y) == pytest.approx(ece, abs=1e-12)


# -- the text task ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    """A capsule run on sentiment carried by single characters, a fifth of the labels flipped: the validation
    texts cannot all be right, so the fitted T lies inside the search's bounds."""
    root = tmp_path_factory.mktemp("calibrate")
    write_sentiment(root, 240, 200, flip=0.2)
    out = root / "run"
    args = ["train", "--task", "text", "--data", "textfile", "--data-dir", str(root), "--min-count", "1"]
    args += ["--dim", "16", "--heads", "2", "--epochs", "3", "--batch-size", "32", "--lr", "0.01"]
    assert main([*args, "--val-fraction", "0.3", "--out", str(out)]) == 0
    return out


def parse(line):
    """``high probability 0.874 length 0.912  text`` -> (label, {name: value}, text)."""
    head, text = line.split("  ", 1)
    label, *pairs = head.split(" ")
    return label, {pairs[i]: float(pairs[i + 1]) for i in range(0, len(pairs), 2)}, text


def test_text_predict_gives_the_calibrated_probability(noisy_run, tmp_path, capsys):
    capsys.readouterr()
    run = load_run(noisy_run)
    c, classes, model = run.meta["fitted"]["calibration"], run.meta["classes"], run.model
    lo, hi = TEMPERATURE_BOUNDS
    assert lo < c["temperature"] < hi and c["val_nll_after"] <= c["val_nll_before"]
    # the meta's fit is the one on the validation split with the best weights, recomputed here
    data = run.task.split_validation(run.data(), run.meta["val_fraction"])
    scores, targets = run.task.validation_scores(model, data, torch.device("cpu"))  # (N, K) capsule lengths
    assert len(targets) == json.loads((noisy_run / "summary.json").read_text())["splits"]["val"]
    again = calibrate(scores, targets)
    assert again == pytest.approx(c, rel=1e-6)
    t = c["temperature"]
    # accuracy unchanged: the calibrated probabilities' argmax is the scores', on validation and on test
    assert torch.equal(calibrated_probabilities(scores, t).argmax(1), scores.argmax(1))
    with torch.no_grad():
        test_scores = torch.cat([model(data.test[i][0][None]) for i in range(len(data.test))])
    test_targets = torch.tensor([data.test[i][1] for i in range(len(data.test))])
    accuracy = (calibrated_probabilities(test_scores, t).argmax(1) == test_targets).double().mean().item()
    summary = json.loads((noisy_run / "summary.json").read_text())
    assert accuracy == pytest.approx(summary["test_metrics"]["test_acc"], abs=1e-12)
    assert summary["fitted"]["calibration"] == c  # summary.json keeps what was fitted

    texts = data.source.test_texts[:4]
    expected = calibrated_probabilities(test_scores[:4], t)  # (4, K) softmax(lengths / T)
    rows = run.cli.predict(model, [], argparse.Namespace(text=texts))
    for i, row in enumerate(rows):
        k = int(test_scores[i].argmax())
        assert row["label"] == classes[k] and row["text"] == texts[i]
        assert sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-12)
        assert row["probabilities"][row["label"]] == row["probability"]
        assert list(row["probabilities"].values()) == pytest.approx(expected[i].tolist(), rel=1e-6)
        assert row["length"] == pytest.approx(test_scores[i, k].item(), rel=1e-6)  # the raw capsule length
    assert main(["predict", "--checkpoint", str(noisy_run), *sum((["--text", x] for x in texts), [])]) == 0
    for line, row in zip(capsys.readouterr().out.splitlines(), rows, strict=True):
        label, numbers, text = parse(line)
        assert line.startswith(f"{row['label']} probability ") and (label, text) == (row["label"], row["text"])
        assert numbers == {"probability": round(row["probability"], 3), "length": round(row["length"], 3)}
    out = tmp_path / "p.csv"
    assert main(["predict", "--checkpoint", str(noisy_run), "--text", texts[0], "--out", str(out)]) == 0
    (got,) = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(got) == ["input", "label", "length", "probability", "text"]  # the old columns kept, in their order
    assert float(got["probability"]) == pytest.approx(rows[0]["probability"], rel=1e-6)
    (title, table) = run.cli.eval_details(run.doc["eval"])[-1]
    assert title.startswith("calibration") and table["temperature T"] == f"{t:.4g}"


def test_a_run_from_before_calibration_predicts_as_it_did(noisy_run, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(noisy_run, old)
    tensors, doc = load_checkpoint(old / "best.safetensors")
    del doc["data_meta"]["fitted"]
    save_file(tensors, str(old / "best.safetensors"), metadata={"attnlab": json.dumps(doc)})
    run = load_run(old)
    assert "fitted" not in run.meta and run.cli.eval_details(run.doc["eval"])[-1][0].startswith("confusion")
    text = "好棒喜欢的书"
    ids = encode([text], Vocabulary(run.meta["vocab"]), run.task.tokenizer, run.task.max_len)[0][None]  # (1, L)
    with torch.no_grad():
        lengths = run.model(ids)[0]
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(old), "--text", text]) == 0
    (row,) = run.cli.predict(run.model, [], argparse.Namespace(text=[text]))
    label = run.meta["classes"][int(lengths.argmax())]
    assert row == {"input": text, "label": label, "length": lengths.max().item(), "text": text}  # no probability
    assert capsys.readouterr().out == f"{row['label']} length {row['length']:.3f}  {text}\n"
    out = tmp_path / "p.csv"
    assert main(["predict", "--checkpoint", str(old), "--text", text, "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[0] == "input,label,length,text"


class Fixed(nn.Module):
    """A text model whose every text scores ``logits`` (K,): (B, L) ids -> (B, K)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, ids):
        return self.logits.expand(ids.shape[0], -1)


def test_logit_heads_give_softmax_of_logits_over_t_and_old_runs_plain_softmax():
    logits = torch.tensor([2.0, -1.0, 0.5])
    meta = {"vocab": ["<pad>", "<unk>", "好"], "classes": ["a", "b", "c"]}
    items = [("t", "好好", None), ("bad", "", "no such file")]
    kwargs = {"tokenizer": "char", "max_len": 8, "head": "mean"}
    old, error = predict_texts(Fixed(logits), items, meta, **kwargs)
    assert error == {"input": "bad", "error": "bad: no such file"}
    assert old == {"input": "t", "label": "a", "probability": logits.softmax(0)[0].item(), "text": "好好"}
    assert format_prediction(old) == f"a probability {logits.softmax(0)[0].item():.3f}  好好"
    (new, _) = predict_texts(Fixed(logits), items, meta | {"fitted": {"calibration": {"temperature": 2.5}}}, **kwargs)
    expected = torch.softmax(logits.double() / 2.5, 0)
    assert new["label"] == "a" and new["probability"] == pytest.approx(expected[0].item(), rel=1e-12)
    assert list(new["probabilities"].values()) == pytest.approx(expected.tolist(), rel=1e-12)
    assert "length" not in new and format_prediction(new) == f"a probability {expected[0].item():.3f}  好好"
