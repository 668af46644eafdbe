"""--ema: the moving average of the weights (engine.averaging), in float64 by hand and through a run of the fake task:
validation, best.* and the test see the average; last.* keeps both; a killed run resumes to the same bits."""

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import fake_task  # noqa: E402  (registers fake_max and fake_min)

from attnlab.cli import main  # noqa: E402
from attnlab.engine.averaging import PREFIX, WARMUP, WeightAverage  # noqa: E402
from attnlab.engine.config import Recipe  # noqa: E402

history = fake_task.history


def test_the_average_follows_the_warmed_up_decay_in_float64():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).double()
    average = WeightAverage(model, decay=0.9)
    expected, batches = None, None
    for t in range(30):  # SGD steps on random data; the average by hand beside it
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(8, 4, dtype=torch.float64))  # moves the BN statistics and counts the batch
        state = {k: v.clone() for k, v in model.state_dict().items()}
        average.update(model)
        if expected is None:  # the first update copies
            expected = state
        else:
            d = min(0.9, (1 + t) / (WARMUP + t))  # t updates before this one
            expected = {k: d * expected[k] + (1 - d) * state[k] for k in state}
        batches = state["1.num_batches_tracked"]
    got = average.module.state_dict()
    for k, v in expected.items():
        if k.endswith("num_batches_tracked"):
            assert torch.equal(got[k], batches)  # the model's count, not an average of counts
        else:
            torch.testing.assert_close(got[k], v, rtol=1e-12, atol=1e-12)
    assert average.steps == 30
    # the decay reaches 0.9 at t = 80: before that the warm-up is what limits it
    assert min(0.9, 81 / 90) == 0.9 and min(0.9, 30 / 39) < 0.9


def test_ema_is_refused_outside_its_range():
    for bad in (-0.1, 0.3, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"--ema: expected 0 \(none\) or a decay in \[0.5, 1\)"):
            Recipe(ema=bad)
    assert Recipe(ema=0.999).ema == 0.999 and Recipe().ema == 0.0


def test_validation_best_and_test_see_the_average(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "fake_max", "--epochs", "1", "--ema", "0.9", "--out", str(out)]) == 0
    assert "validation and test: the moving average of the weights (--ema 0.9)" in capsys.readouterr().out
    last, best = load_file(out / "last.safetensors"), load_file(out / "best.safetensors")
    averaged = {k[len(PREFIX + "module.") :]: v for k, v in last.items() if k.startswith(PREFIX + "module.")}
    trained = {k[len("model.") :]: v for k, v in last.items() if k.startswith("model.")}
    kept = {k[len("model.") :]: v for k, v in best.items() if k.startswith("model.")}
    assert averaged.keys() == trained.keys() == kept.keys()
    assert all(torch.equal(kept[k], averaged[k]) for k in kept)  # best.* is the average (one epoch: it is best)
    assert not all(torch.equal(trained[k], averaged[k]) for k in kept)  # and the average is not the weights
    assert int(last[PREFIX + "n_averaged"]) == 6  # 96 points at batch 16: one update a step
    assert not any(k.startswith(PREFIX) for k in best)  # best.* is an ordinary checkpoint

    def score(weights, points):  # the fake task's metric, by hand, with these weights
        model = fake_task.fake_mlp()
        model.load_state_dict(weights)
        x, y = points.tensors
        with torch.no_grad():
            logits = model(x)
        return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).sum().item() / len(y)

    summary = json.loads((out / "summary.json").read_text())
    loss, acc = score(averaged, fake_task.points(48, 1, 1.0))
    assert summary["test_metrics"]["test_acc"] == pytest.approx(acc, abs=1e-9)
    assert summary["test_metrics"]["test_loss"] == pytest.approx(loss, rel=1e-5)
    assert score(trained, fake_task.points(48, 1, 1.0))[0] != pytest.approx(loss, rel=1e-5)


def test_a_killed_ema_run_resumes_to_the_same_bits(tmp_path):
    args = ["train", "--task", "fake_min", "--epochs", "3", "--ema", "0.8", "--step-delay", "0.05"]
    ref = tmp_path / "ref"
    assert main([*args[:-2], "--out", str(ref)]) == 0
    out = tmp_path / "killed"
    fake_task.kill_in_epoch_two(args, out)
    assert main([*args[:-2], "--step-delay", "0.05", "--out", str(out), "--resume"]) == 0
    a, b = load_file(ref / "last.safetensors"), load_file(out / "last.safetensors")
    keys = [k for k in a if k.startswith(("model.", PREFIX))]
    assert any(k.startswith(PREFIX) for k in keys)
    assert keys == [k for k in b if k.startswith(("model.", PREFIX))] and all(torch.equal(a[k], b[k]) for k in keys)
    assert [r["val_loss"] for r in history(out)] == [r["val_loss"] for r in history(ref)]
