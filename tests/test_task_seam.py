"""The engine on a tiny fake task (tests/helpers/fake_task.py): it trains any task and names none.

Best checkpoint by "max" and by "min", metric sums under 2 processes equal to 1 process, exact resume
after kill -9, compare over a non-attention field, options refused for a task that lacks them; the fifth task
through every command; each task's own flags; config files in and out.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import fake_task  # noqa: E402  (registers fake_max and fake_min)

from attnlab.cli import main  # noqa: E402

HELPER = Path(__file__).parent / "helpers" / "fake_task.py"
ENV = fake_task.SUBPROCESS_ENV


history = fake_task.history


def weights(path):
    return {k: v for k, v in load_file(path).items() if k.startswith("model.")}


@pytest.mark.parametrize(("task", "key", "pick"), [("fake_max", "val_acc", max), ("fake_min", "val_loss", min)])
def test_best_checkpoint_follows_the_tasks_monitor(tmp_path, task, key, pick):
    out = tmp_path / task
    # a high lr makes the metrics bounce, so the best epoch is not simply the last
    assert main(["train", "--task", task, "--epochs", "6", "--lr", "0.8", "--noise", "2.5", "--out", str(out)]) == 0
    rows = history(out)
    values = [r[key] for r in rows]
    # the best value; among epochs that tie on it (accuracy on 10 points ties often), the lowest val_loss
    best_epoch = min((r for r in rows if r[key] == pick(values)), key=lambda r: (r["val_loss"], r["epoch"]))["epoch"]
    assert json.loads((out / "best.json").read_text())["epoch"] == best_epoch
    summary = json.loads((out / "summary.json").read_text())
    assert summary["monitor"] == key and summary[f"best_{key}"] == pick(values) and summary["best_epoch"] == best_epoch
    assert summary["val_metrics"] == {k: v for k, v in rows[best_epoch - 1].items() if k.startswith("val_")}
    assert summary["train_points_per_s"] > 0 and summary["splits"] == {"train": 86, "val": 10, "test": 48}
    # the test split is scored once, with the best checkpoint: attnlab eval of best.safetensors agrees
    assert main(["eval", "--checkpoint", str(out)]) == 0
    evaluated = json.loads((out / "eval.json").read_text())["metrics"]
    assert evaluated == pytest.approx(summary["test_metrics"]) and set(evaluated) == {"test_loss", "test_acc"}
    assert summary["test_" + key.removeprefix("val_")] == summary["test_metrics"]["test_" + key.removeprefix("val_")]
    assert list(rows[0]) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "points_per_s", "seconds"]
    assert summary["task"] == task and summary["hidden"] == 16  # the task's options are in the summary


def test_two_processes_reduce_the_metric_sums_to_one_process(tmp_path):
    args = ["train", "--task", "fake_max", "--epochs", "2", "--batch-size", "16"]
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, str(HELPER), *args, "--out", str(one)], env=ENV, check=True, capture_output=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(HELPER)]
    result = subprocess.run([*torchrun, *args, "--out", str(two)], env=ENV, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    for a, b in zip(history(one), history(two), strict=True):
        assert a["val_acc"] == b["val_acc"] and a["train_acc"] == b["train_acc"]  # counts: exact
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)  # sums in another order
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
    assert json.loads((two / "last.json").read_text())["eval"]["n"] == 10  # every validation point once
    assert json.loads((two / "best.json").read_text())["eval"]["n"] == 48  # every test point once, at the end
    a, b = (json.loads((d / "summary.json").read_text())["test_metrics"] for d in (one, two))
    assert a["test_acc"] == b["test_acc"] and a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-6)


def test_resume_after_kill_9_is_bit_identical(tmp_path):
    args = ["train", "--task", "fake_min", "--epochs", "3", "--step-delay", "0.05"]
    ref = tmp_path / "ref"
    assert main([*args[:-2], "--out", str(ref)]) == 0  # the same run, uninterrupted and without the delay
    out = tmp_path / "killed"
    fake_task.kill_in_epoch_two(args, out)
    assert main([*args[:-2], "--step-delay", "0.05", "--out", str(out), "--resume"]) == 0
    a, b = weights(ref / "last.safetensors"), weights(out / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["val_loss"] for r in history(out)] == [r["val_loss"] for r in history(ref)]


def test_resume_refuses_other_options(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "fake_min", "--epochs", "1", "--out", str(out)]) == 0
    assert main(["train", "--task", "fake_min", "--hidden", "8", "--out", str(out), "--resume"]) == 2
    assert "hidden 16 -> 8" in capsys.readouterr().err


def test_compare_varies_a_non_attention_field(tmp_path):
    args = ["compare", "--task", "fake_max", "--vary", "hidden=4,32", "--seeds", "2", "--epochs", "2"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows[0].startswith("variant,hidden,runs,monitor,metric,unit,test_mean,test_std,val_mean") and len(rows) == 3
    summary = json.loads((tmp_path / "32" / "seed1" / "summary.json").read_text())
    assert summary["hidden"] == 32 and summary["seed"] == 1 and summary["params"] == 8 * 32 + 32 + 32 * 3 + 3
    assert "| 4 |" in (tmp_path / "results.md").read_text() and "test_acc (%)" in (tmp_path / "results.md").read_text()


def test_an_option_of_another_task_is_refused_by_name(tmp_path, capsys):
    assert main(["train", "--task", "fake_max", "--attention", "se", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--attention: not an option of task 'fake_max'" in err and "classify" in err
    assert main(["compare", "--task", "fake_max", "--vary", "width=1,2", "--out", str(tmp_path / "y")]) == 2
    assert "no field 'width'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_list_tasks_shows_each_tasks_monitor(capsys):
    assert main(["list", "tasks", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| fake_min | test task | min val_loss | hidden, noise, step_delay, data, head, needs |" in lines
    assert any(line.startswith("| classify | image classification") and "max val_acc" in line for line in lines)


def test_length_grouped_batches_cover_everything_once_and_split_across_ranks():
    from attnlab.engine.samplers import LengthGroupedSampler

    rng = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (1000,), generator=rng).tolist()
    one = LengthGroupedSampler(lengths, 32, seed=5, group=4)
    one.set_epoch(3)
    order = list(one)
    assert sorted(order) == list(range(1000))  # every sample once
    again = LengthGroupedSampler(lengths, 32, seed=5, group=4)
    again.set_epoch(3)
    assert list(again) == order  # deterministic in (seed, epoch): a resumed epoch repeats
    again.set_epoch(4)
    assert list(again) != order
    ranks = [LengthGroupedSampler(lengths, 32, world_size=2, rank=r, seed=5, group=4) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(3)
    r0, r1 = list(ranks[0]), list(ranks[1])
    assert set(r0[:16] + r1[:16]) == set(order[:32])  # global batch 0 = the two ranks' batches 0

    def padding(seq):
        batches = [seq[i : i + 32] for i in range(0, len(seq), 32)]
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    shuffled = torch.randperm(1000, generator=rng).tolist()
    assert padding(order) < 0.5 * padding(shuffled)  # far less padding than random batches


def test_a_fifth_task_works_through_every_command(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "fake_max", "--epochs", "2", "--out", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert main(["eval", "--checkpoint", str(run)]) == 0
    capsys.readouterr()
    evaluated = json.loads((run / "eval.json").read_text())
    best = json.loads((run / "best.json").read_text())
    assert evaluated["metrics"]["test_acc"] == best["test"]["test_acc"] == summary["test_acc"]
    assert evaluated["run"] == "fake MLP 16" and summary["unit"] == "points"
    point = tmp_path / "point.csv"
    point.write_text("2,0,0,0,0,0,0,0")
    assert main(["predict", "--checkpoint", str(run), str(point), "--digits", "2"]) == 0
    line = capsys.readouterr().out.strip()
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    model.load_state_dict({k.removeprefix("model."): v for k, v in weights(run / "best.safetensors").items()})
    p = model(torch.tensor([[2.0, 0, 0, 0, 0, 0, 0, 0]])).softmax(1)[0].detach()
    assert line == f"{point}: class {int(p.argmax())}, probability {round(float(p.max()), 2)}"
    assert main(["predict", "--checkpoint", str(run), str(point), "--top", "2"]) == 2  # classify's flag
    assert "--top: not a predict flag of task 'fake_max' (it is of: classify" in capsys.readouterr().err
    assert main(["visualize", "--checkpoint", str(run), "--out", str(tmp_path / "m.png")]) == 2
    assert "task 'fake_max' draws nothing" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(run), "--format", "exported", "--out", str(tmp_path / "m.pt2")]) == 0
    exported = torch.export.load(str(tmp_path / "m.pt2")).module()
    x = torch.randn(2, 8)
    assert torch.allclose(exported(x), model(x), atol=1e-6)
    assert main(["list", "models", "--markdown"]) == 0
    assert any(row.startswith("| fake_mlp | Sequential |") for row in capsys.readouterr().out.splitlines())


def test_each_task_owns_its_flags(tmp_path, capsys):
    assert main(["train", "--task", "fake_max", "--head", "mlp", "--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["head"] == "mlp"
    with pytest.raises(SystemExit):  # fake's --head has its own choices (text's capsule is not one)
        main(["train", "--task", "fake_max", "--head", "capsule", "--out", str(tmp_path / "b")])
    assert "--head: expected one of linear, mlp, got 'capsule'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--task", "fake_max", "--help"])
    shown = capsys.readouterr().out
    assert "fake_max options" in shown and "--hidden" in shown and "--attention" not in shown
    assert "(default linear)" in shown and "(default 261)" in shown  # the task's own defaults: head, samples
    args = ["compare", "--task", "fake_max", "--head", "linear,mlp", "--seeds", "1", "--epochs", "1"]
    assert main([*args, "--no-latency", "--out", str(tmp_path / "c")]) == 0  # a comma list of a flag with choices
    assert (tmp_path / "c" / "mlp" / "seed0" / "summary.json").is_file()
    rows = [line for line in (tmp_path / "c" / "results.md").read_text().splitlines() if line.startswith("| mlp |")]
    assert rows[0].endswith(" | — |")  # no latency measured: a dash, not nan


def test_config_files_set_fields_and_flags_win(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("task: fake_min\nhidden: 8\nepochs: 2\nlr: 0.1\n")
    assert main(["train", "--config", str(config), "--epochs", "1", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "task: fake_min\nepochs: 1\n" in printed and "hidden: 8\n" in printed and "lr: 0.1\n" in printed
    config.write_text("task: fake_min\nhiden: 8\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "x")]) == 2
    assert "unknown key 'hiden'; did you mean 'hidden'?" in capsys.readouterr().err
    config.write_text("task: fake_min\nhidden: eight\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "x")]) == 2
    assert "hidden: expected int, got 'eight' (str)" in capsys.readouterr().err
    json_config = tmp_path / "run.json"
    json_config.write_text(json.dumps({"task": "fake_min", "optimizer": "adam"}))
    assert main(["train", "--config", str(json_config), "--out", str(tmp_path / "x")]) == 2
    assert "optimizer: expected one of sgd, adamw, got 'adam'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_runs_config_json_fed_back_reproduces_it_bit_for_bit(tmp_path):
    first = tmp_path / "first"
    args = ["train", "--task", "fake_max", "--epochs", "2", "--hidden", "12", "--noise", "1.5", "--seed", "3"]
    assert main([*args, "--out", str(first)]) == 0
    again = tmp_path / "again"
    assert main(["train", "--config", str(first / "config.json"), "--out", str(again)]) == 0
    assert (again / "config.json").read_text() == (first / "config.json").read_text()
    a, b = weights(first / "last.safetensors"), weights(again / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["val_loss"] for r in history(first)] == [r["val_loss"] for r in history(again)]


def test_a_run_another_run_needs_is_made_first_and_said(tmp_path, capsys):
    needed, out = tmp_path / "needed", tmp_path / "run"
    assert main(["train", "--task", "fake_min", "--needs", str(needed), "--epochs", "1", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"fake: this run needs a fake_max run: training it first, into {needed}" in said
    assert "\nmade: test_acc " in said and f" s; run folder {needed}\n" in said  # its figure and its time
    made = json.loads((needed / "summary.json").read_text())
    assert made["task"] == "fake_max" and made["epochs"] == 1 and (out / "summary.json").is_file()
    stamp = (needed / "summary.json").stat().st_mtime_ns
    assert main(["train", "--task", "fake_min", "--needs", str(needed), "--out", str(tmp_path / "again")]) == 0
    assert "training it first" not in capsys.readouterr().out  # made once
    assert (needed / "summary.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("task", ["classify", "segment", "text", "text_mlm", "video"])
def test_every_tasks_help_prints(task, capsys):
    with pytest.raises(SystemExit) as stop:  # argparse %-formats each help string: a bare % would break it
        main(["train", "--task", task, "--help"])
    assert stop.value.code == 0 and f"{task} options" in capsys.readouterr().out
