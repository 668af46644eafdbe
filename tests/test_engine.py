"""Training runs: the run folder, reproducibility, resume after kill -9, refusals, eval and compare."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.flop_counter import FlopCounterMode

from attnlab.cli import main
from attnlab.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from attnlab.engine.run_folder import load_run

QUICK = ["--attention", "eca", "--epochs", "3", "--batch-size", "64", "--train-limit", "256"]


def train(out, *extra):
    assert main(["train", *QUICK, "--out", str(out), *extra]) == 0


def weights(path):
    return {k: v for k, v in load_file(path).items() if k.startswith("model.")}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "base"
    train(out)
    return out


def test_run_folder(base_run):
    for name in ("config.json", "metrics.jsonl", "summary.json", "last.safetensors", "last.json", "best.safetensors"):
        assert (base_run / name).is_file(), name
    lines = [json.loads(x) for x in (base_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    keys = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr", "images_per_s", "seconds"]
    assert all(list(r) == keys for r in lines)  # the classification records of before the Task seam
    summary = json.loads((base_run / "summary.json").read_text())
    best = max(lines, key=lambda r: r["val_acc"])
    assert summary["best_val_acc"] == best["val_acc"] and summary["best_epoch"] == best["epoch"]
    assert summary["val_metrics"] == {k: v for k, v in best.items() if k.startswith("val_")}
    assert set(summary["test_metrics"]) == {"test_loss", "test_acc", "test_top5"}
    assert summary["splits"]["test"] == 1000 and summary["splits"]["val"] == 400  # mnist5k: 10 % of each class
    model = load_run(base_run).model  # params and FLOPs of the run's own network, counted here by torch
    assert summary["params"] == sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as flops:
        model(torch.zeros(1, 1, 28, 28))
    assert summary["gflops"] == pytest.approx(flops.get_total_flops() / 1e9, rel=1e-9) and summary["wall_seconds"] > 0
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    config = json.loads((base_run / "config.json").read_text())
    assert config["attention"] == "eca" and config["task"] == "classify" and config["label_smoothing"] == 0.1
    assert summary["monitor"] == "val_acc" and summary["train_images_per_s"] > 0


def test_same_seed_gives_bit_identical_weights(base_run, tmp_path):
    train(tmp_path / "again")
    a, b = weights(base_run / "last.safetensors"), weights(tmp_path / "again" / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_runs_config_json_fed_back_reproduces_it(base_run, tmp_path):
    assert main(["train", "--config", str(base_run / "config.json"), "--out", str(tmp_path / "again")]) == 0
    a, b = weights(base_run / "last.safetensors"), weights(tmp_path / "again" / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "again" / "config.json").read_text() == (base_run / "config.json").read_text()


def test_resume_after_kill_9_matches_uninterrupted(base_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "attnlab", "train", *QUICK, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # wait for epoch 1's checkpoint, then kill in the middle of epoch 2
        if (out / "last.json").is_file() and json.loads((out / "last.json").read_text())["epoch"] >= 1:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = json.loads((out / "last.json").read_text())
    assert killed["epoch"] < 3, "the run finished before it was killed"
    train(out, "--resume")  # a temporary file of a write the kill cut short is never read, and removed
    assert not list(out.glob(".*.tmp*"))
    # wall time counts the killed process's finished epochs too
    assert json.loads((out / "summary.json").read_text())["wall_seconds"] > killed["wall_seconds"] > 0
    a, b = weights(base_run / "last.safetensors"), weights(out / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (out / "metrics.jsonl").read_text().count("\n") == 3
    ref = [json.loads(x)["val_acc"] for x in (base_run / "metrics.jsonl").read_text().splitlines()]
    got = [json.loads(x)["val_acc"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert got == ref


def test_refusals_name_the_problem(base_run, tmp_path, capsys):
    assert main(["train", *QUICK, "--out", str(base_run)]) == 2
    assert "--resume" in capsys.readouterr().err  # holds a run: resume or overwrite
    assert main(["train", *QUICK, "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["train", *QUICK[:-2], "--train-limit", "128", "--out", str(base_run), "--resume"]) == 2
    assert "train_limit" in capsys.readouterr().err
    assert main(["train", "--attention", "cbma", "--out", str(tmp_path / "bad")]) == 2
    assert "did you mean 'cbam'" in capsys.readouterr().err
    assert main(["train", "--data", "mnist", "--out", str(tmp_path / "bad")]) == 2
    assert "mnist5k" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # nothing written for a run that cannot start


def test_checkpoint_of_another_model_names_the_keys(base_run, tmp_path):
    from attnlab.engine.checkpoint import model_state
    from attnlab.engine.run_folder import load_model_weights

    tensors, _ = load_checkpoint(base_run / "last.safetensors")
    import attnlab

    other = attnlab.create_model("resnet18", num_classes=10, attention="se", in_chans=1)
    with pytest.raises(CheckpointError, match="another model or attention.*attn"):
        load_model_weights(other, model_state(tensors), base_run / "last.safetensors")


def test_truncated_or_corrupted_checkpoint_is_refused(base_run, tmp_path):
    data = (base_run / "last.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.safetensors")


def test_checkpoint_round_trip_restores_optimizer_and_rng(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    save_checkpoint(
        tmp_path / "c.safetensors",
        model,
        {"epoch": 1},
        optimizer=opt,
        rng={"torch": torch.get_rng_state(), "python": [1]},
    )
    tensors, doc = load_checkpoint(tmp_path / "c.safetensors")
    assert doc["epoch"] == 1 and torch.equal(tensors["rng.torch"], torch.get_rng_state())
    from attnlab.engine.checkpoint import restore_optimizer

    opt2 = torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=0.5, momentum=0.9)
    restore_optimizer(opt2, tensors, doc)
    assert opt2.param_groups[0]["lr"] == 0.1
    assert torch.equal(
        opt2.state_dict()["state"][0]["momentum_buffer"], opt.state_dict()["state"][0]["momentum_buffer"]
    )
    assert json.loads((tmp_path / "c.json").read_text())["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.safetensors"]  # no temporary files


def test_non_finite_loss_stops_and_says_how_to_resume(tmp_path, capsys):
    assert main(["train", *QUICK, "--lr", "1e30", "--out", str(tmp_path / "nan")]) == 2
    err = capsys.readouterr().err
    assert "training stopped" in err and "--resume" in err and "--lr" in err


def test_eval_prints_and_writes_metrics(base_run, capsys):
    assert main(["eval", "--checkpoint", str(base_run)]) == 0
    out = capsys.readouterr().out
    result = json.loads((base_run / "eval.json").read_text())
    summary = json.loads((base_run / "summary.json").read_text())
    assert result["metrics"]["test_acc"] == pytest.approx(summary["test_acc"])
    assert f"test_acc {summary['test_acc']:.4f}" in out  # the printed figure is the run's test figure
    confusion = result["details"]["confusion"]
    assert len(confusion) == 10 and sum(map(sum, confusion)) == 1000
    per_class = result["details"]["per_class_acc"]
    assert f"{per_class[3]:.4f}" in out.split("accuracy per class")[1]  # the per-class table is printed
    assert main(["eval", "--checkpoint", str(base_run / "nope")]) == 2


def test_compare_runs_every_module_and_skips_finished_runs(tmp_path, capsys):
    args = [
        "compare",
        "--attention",
        "none,se",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--train-limit",
        "64",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    for name in ("results.csv", "results.md", "compare.png"):
        assert (tmp_path / name).is_file()
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows[0].startswith("variant,attention,runs,monitor,metric,unit,test_mean,test_std") and len(rows) == 5
    assert [r.split(",")[0] for r in rows[3:]] == ["pixels_logreg (baseline)", "pixels_svm (baseline)"]
    later = json.loads((tmp_path / "se" / "seed1" / "summary.json").read_text())
    assert later["baselines"] == {}  # the baselines depend on the data alone: fitted in the first run only
    finals = [json.loads((tmp_path / "se" / f"seed{s}" / "summary.json").read_text())["test_acc"] for s in (0, 1)]
    se_row = next(r for r in rows if r.startswith("se,"))
    mean = sum(finals) / 2
    assert float(se_row.split(",")[6]) == pytest.approx(mean)  # the mean over the two seeds
    std = abs(finals[0] - finals[1]) / 2**0.5
    # fractions in percent (the task says which): accuracy as 12.34 ± 0.56, in the table and per metric
    assert f"| se | {100 * mean:.2f} ± {100 * std:.2f} |" in (tmp_path / "results.md").read_text()
    # each run's test predictions (its own pass over the test split) agree with its test accuracy, and are paired
    # sample by sample with the first run's baselines: McNemar's counts in the table are those of the predictions
    first = json.loads((tmp_path / "none" / "seed0" / "summary.json").read_text())
    counts = []
    for s in (0, 1):
        run = json.loads((tmp_path / "se" / f"seed{s}" / "summary.json").read_text())
        truth = np.array(run["test_targets"])
        mine = np.array(run["test_predictions"]) == truth
        theirs = np.array(first["baselines"]["pixels_logreg"]["test_predictions"]) == truth
        assert mine.mean() == pytest.approx(run["test_acc"]) and len(truth) == run["splits"]["test"]
        counts.append((int((mine & ~theirs).sum()), int((~mine & theirs).sum())))
    line = f"| se | pixels_logreg | {counts[0][0]} / {counts[1][0]} | {counts[0][1]} / {counts[1][1]} | "
    assert line in (tmp_path / "results.md").read_text()
    # se against none (the reference where attention is varied), seed by seed: the t-interval of the differences
    from scipy.stats import t

    plain = [json.loads((tmp_path / "none" / f"seed{s}" / "summary.json").read_text())["test_acc"] for s in (0, 1)]
    d = np.array(finals) - np.array(plain)
    half = t.ppf(0.975, 1) * d.std(ddof=1) / np.sqrt(2)
    import csv

    se = next(r for r in csv.DictReader((tmp_path / "results.csv").open()) if r["variant"] == "se")
    assert float(se["diff"]) == pytest.approx(d.mean()) and float(se["diff_low"]) == pytest.approx(d.mean() - half)
    expected = "better" if d.mean() - half > 0 else "worse" if d.mean() + half < 0 else "no difference"
    assert se["verdict"] == expected and se["reference"] == "none"
    table = (tmp_path / "results.md").read_text()
    assert (
        "Δ vs none (95 % CI)" in table and f"[{100 * (d.mean() - half):+.2f}, {100 * (d.mean() + half):+.2f}]" in table
    )
    stamp = (tmp_path / "se" / "seed1" / "summary.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (tmp_path / "se" / "seed1" / "summary.json").stat().st_mtime_ns == stamp


def test_ctrl_c_keeps_the_last_checkpoint_and_says_how_to_resume(tmp_path):
    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "attnlab", "train", *QUICK, "--out", str(out)]
    # a shell's background job starts with SIGINT ignored, and a child inherits that: restore the default so
    # Python installs its KeyboardInterrupt handler however the tests were started
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore)
    deadline = time.time() + 240
    while time.time() < deadline and not (out / "last.json").is_file():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    load_checkpoint(out / "last.safetensors")  # whole and readable


def test_classify_placement_and_stages_put_the_attention_where_they_say(tmp_path):
    from attnlab.tasks.classify.task import Classify, ClassifyOptions

    def keys(**options):
        task = Classify(ClassifyOptions(**options), meta={"classes": list("ab"), "stem": "cifar", "in_chans": 1})
        return {
            k.rsplit(".attn", 1)[0] for k in task.build_model().state_dict() if ".attn." in k or k.startswith("attn")
        }

    assert keys() == {f"layer{s}.{b}" for s in (1, 2, 3, 4) for b in (0, 1)}  # cbam's paper place: every block
    assert keys(stages="34") == {f"layer{s}.{b}" for s in (3, 4) for b in (0, 1)}
    assert {k.split(".")[1] for k in keys(placement="stage", stages="43")} == {"layer3", "layer4"}
    assert ClassifyOptions(stages="43").stages == "34"
    with pytest.raises(ValueError, match=r"--stages: expected distinct digits of 1-4 .* got '15'"):
        ClassifyOptions(stages="15")
    with pytest.raises(ValueError, match="--placement, --stages: place an attention"):
        ClassifyOptions(attention="none", placement="block")
    args = ["compare", "--attention", "se", "--vary", "stages=4,34", "--seeds", "1", "--epochs", "1"]
    assert main([*args, "--batch-size", "64", "--train-limit", "64", "--out", str(tmp_path)]) == 0
    rows = [r.split(",") for r in (tmp_path / "results.csv").read_text().splitlines()]
    assert rows[0][:2] == ["variant", "stages"] and [r[1] for r in rows[1:3]] == ["4", "34"]
    summary = json.loads((tmp_path / "34" / "seed0" / "summary.json").read_text())
    assert summary["stages"] == "34" and summary["attention"] == "se"


def test_the_paired_predictions_are_those_the_test_score_came_from(base_run, tmp_path, monkeypatch):
    """One process: summary.json's test predictions are collected while the test split is scored (no second pass):
    they give the test accuracy, and they are what paired.test_predictions computes again from best.*."""
    from attnlab.engine import paired, trainer

    summary = json.loads((base_run / "summary.json").read_text())
    predicted, truth = np.array(summary["test_predictions"]), np.array(summary["test_targets"])
    assert len(predicted) == summary["splits"]["test"] and (predicted == truth).mean() == summary["test_acc"]
    run, cpu = load_run(base_run), torch.device("cpu")
    data = trainer.build_data(run.config, run.task)
    model = run.task.prepare_model(run.model, cpu)  # as the run held it (channels_last)
    again, targets = paired.test_predictions(model, data, run.task, cpu, summary["plan"]["precision"])
    assert again == summary["test_predictions"] and targets == summary["test_targets"]

    def second_pass(*args, **kwargs):
        raise AssertionError("a one-process run scores the test split once")

    monkeypatch.setattr(trainer, "test_predictions", second_pass)
    train(tmp_path / "again", "--epochs", "1")
