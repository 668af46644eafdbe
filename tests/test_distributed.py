"""Two processes on CPU through torchrun (gloo): sampler split, identical ranks, equal to one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = Path(__file__).parent / "helpers" / "ddp_worker.py"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def run(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    run([*TORCHRUN, str(WORKER), str(base / "two")], base)
    run([sys.executable, str(WORKER), str(base / "one")], base)
    return base


def test_sampler_splits_without_overlap(runs):
    a, b = (json.loads((runs / "two" / f"indices{r}.json").read_text()) for r in (0, 1))
    assert set(a).isdisjoint(b) and len(a) == len(b) == 64
    one = json.loads((runs / "one" / "indices0.json").read_text())
    assert sorted(a + b) == sorted(one)
    # batch k of the two ranks together is batch k of one process (global batch 32 = 2 × 16)
    assert set(a[:16] + b[:16]) == set(one[:32])


def test_ranks_end_identical_and_equal_one_process(runs):
    r0, r1 = (load_file(runs / "two" / f"rank{r}.safetensors") for r in (0, 1))
    single = load_file(runs / "one" / "rank0.safetensors")
    assert set(single) == set(r0)
    for k, v in single.items():
        assert torch.equal(r0[k], r1[k]), k
        torch.testing.assert_close(r0[k], v, rtol=0, atol=1e-5)


def test_torchrun_train_end_to_end(tmp_path):
    """`torchrun -m attnlab train` with 2 processes: rank 0 alone writes the run folder."""
    out = tmp_path / "run"
    run(
        [
            *TORCHRUN,
            "-m",
            "attnlab",
            "train",
            "--attention",
            "eca",
            "--stem",
            "imagenet",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--train-limit",
            "64",
            "--out",
            str(out),
        ],
        tmp_path,
    )
    summary = json.loads((out / "summary.json").read_text())
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert summary["epochs"] == len(lines) == 1 and summary["best_val_acc"] == lines[0]["val_acc"]
    assert not list(out.glob("*.tmp*")) and (out / "best.safetensors").is_file()  # rank 0 alone wrote it, whole
    best = json.loads((out / "best.json").read_text())
    assert sum(map(sum, best["eval"]["confusion"])) == 1000  # every test image counted once over the two ranks
