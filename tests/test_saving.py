"""When a run writes its checkpoints (engine.saving): last.* after the first epoch, when the interval has passed
and after the final epoch; an improvement held in memory and written to best.* with the next last.*, so that the
two on disk belong together; metrics.jsonl every epoch; a killed run resumes from the last write."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import fake_task  # noqa: E402  (registers fake_min)

from attnlab.cli import main  # noqa: E402
from attnlab.engine.checkpoint import load_checkpoint  # noqa: E402
from attnlab.engine.saving import CheckpointWriter  # noqa: E402


def _epochs(
    tmp_path, every: float, improved: list[bool]
) -> tuple[list[int | None], list[int | None], CheckpointWriter]:
    """Train a linear layer by hand for len(improved) epochs; the epoch last.json and best.json hold after each."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    writer = CheckpointWriter(tmp_path, every, 0, lambda: {"torch": torch.get_rng_state()})
    history, last, best = [], [], []
    for epoch, better in enumerate(improved, start=1):
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        history.append({"epoch": epoch, "val_loss": 1.0 / epoch})
        meta = {"epoch": epoch, "history": history}
        final = epoch == len(improved)
        writer.epoch_done(
            meta,
            model,
            model,
            improved=better,
            final=final,
            optimizer=optimizer,
            scheduler=scheduler,
            extra=None,
        )
        read = lambda name: json.loads((tmp_path / name).read_text())["epoch"] if (tmp_path / name).is_file() else None  # noqa: E731
        last.append(read("last.json"))
        best.append(read("best.json"))
        lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["epoch"] for x in lines] == list(range(1, epoch + 1))  # every epoch
    return last, best, writer


def test_a_long_interval_writes_after_the_first_and_the_final_epoch(tmp_path):
    last, best, writer = _epochs(tmp_path, 1e9, [True, True, False, True, False])
    assert last == [1, 1, 1, 1, 5] and writer.saved_epoch == 5
    assert best == [1, 1, 1, 1, 4]  # epoch 4's improvement waited in memory for the final write
    tensors, doc = load_checkpoint(tmp_path / "best.safetensors")
    assert doc["epoch"] == 4 and [r["epoch"] for r in doc["history"]] == [1, 2, 3, 4]  # its own history
    _, last_doc = load_checkpoint(tmp_path / "last.safetensors")
    assert last_doc["epoch"] == 5 and "optimizer" in last_doc and "rng" in last_doc


def test_the_best_weights_are_those_validation_saw(tmp_path):
    """best.* holds the weights of the improving epoch, not the later ones it is written beside."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    writer = CheckpointWriter(tmp_path, 1e9, 0, lambda: {"torch": torch.get_rng_state()})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    seen = {}
    for epoch in (1, 2, 3):
        with torch.no_grad():
            model.weight.add_(1.0)
        seen[epoch] = model.weight.detach().clone()
        meta = {"epoch": epoch, "history": []}
        writer.epoch_done(
            meta,
            model,
            model,
            improved=epoch == 2,
            final=epoch == 3,
            optimizer=optimizer,
            scheduler=scheduler,
            extra=None,
        )
    best, _ = load_checkpoint(tmp_path / "best.safetensors")
    last, _ = load_checkpoint(tmp_path / "last.safetensors")
    assert torch.equal(best["model.weight"], seen[2]) and torch.equal(last["model.weight"], seen[3])


def test_zero_writes_after_every_epoch(tmp_path):
    last, best, _ = _epochs(tmp_path, 0.0, [True, False, True])
    assert last == [1, 2, 3] and best == [1, 1, 3]


def test_a_bad_interval_is_refused_by_name(tmp_path, capsys):
    assert (
        main(["train", "--task", "fake_min", "--epochs", "1", "--checkpoint-every", "-1", "--out", str(tmp_path)]) == 2
    )
    assert "--checkpoint-every: expected seconds >= 0, got -1" in capsys.readouterr().err


def test_a_run_killed_between_writes_resumes_from_the_last_one(tmp_path):
    """With a long interval a run killed in its third epoch holds epoch 1's last.* (epoch 2 is in metrics.jsonl
    only); the resumed run trains epochs 2-3 again and ends on the uninterrupted run's bits."""
    args = ["train", "--task", "fake_min", "--epochs", "3", "--checkpoint-every", "1e9"]
    ref = tmp_path / "ref"
    assert main([*args, "--out", str(ref)]) == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, fake_task.__file__, *args, "--step-delay", "0.05", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=fake_task.SUBPROCESS_ENV)
    deadline = time.time() + 120
    metrics = out / "metrics.jsonl"
    while time.time() < deadline and not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.02)
    time.sleep(0.1)  # in epoch 3 (6 steps of 0.05 s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((out / "last.json").read_text())["epoch"] == 1
    assert main([*args, "--step-delay", "0.05", "--out", str(out), "--resume"]) == 0
    a, _ = load_checkpoint(ref / "last.safetensors")
    b, doc = load_checkpoint(out / "last.safetensors")
    assert doc["epoch"] == 3 and all(torch.equal(a[k], b[k]) for k in a if k.startswith("model."))
    assert [r["val_loss"] for r in fake_task.history(out)] == [r["val_loss"] for r in fake_task.history(ref)]
