"""The timing helpers behind every benchmark table, and what the benchmarks report: the same computation on both
sides where they time attnlab against a reference, and the numbers their measured times give."""

import random

import pytest
import torch

import attnlab
from attnlab.measure.timing import interleaved_samples, median_interval, paired_ratio


def test_interleaved_samples_calls_each_function_once_per_round():
    calls = {"a": 0, "b": 0, "c": 0}

    def counter(name):
        def fn():
            calls[name] += 1

        return fn

    samples = interleaved_samples({k: counter(k) for k in calls}, torch.device("cpu"), rounds=5, warmup=2)
    assert {k: len(v) for k, v in samples.items()} == {"a": 5, "b": 5, "c": 5}
    assert calls == {"a": 7, "b": 7, "c": 7}


def test_paired_ratio_pairs_by_round():
    # a shared drift (round 3 twice as slow for both) cancels; quartiles of the per-round ratios
    assert paired_ratio([2.0, 2.0, 4.0, 2.0], [1.0, 1.0, 2.0, 1.0])[:3] == (2.0, 2.0, 2.0)
    r = paired_ratio([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)
    assert (r.median, r.q1, r.q3, r.ci) == (3.0, 1.5, 4.5, None)  # 5 rounds: no 95 % interval exists
    assert paired_ratio([3.0], [2.0]) == (1.5, 1.5, 1.5, None)
    assert paired_ratio([float(i) for i in range(1, 21)], [1.0] * 20).ci == (6.0, 15.0)


def test_median_interval_is_the_sign_test_interval():
    # the textbook ranks (1-based): n = 6 -> 1st and 6th (96.9 %), n = 10 -> 2nd and 9th, n = 30 -> 10th and 21st
    assert median_interval(range(6)) == (0, 5)
    assert median_interval(range(10)) == (1, 8)
    assert median_interval(range(30)) == (9, 20)
    # and it covers the true median of a skewed distribution at least 95 % of the time
    rng = random.Random(0)
    hits = 0
    for _ in range(2000):
        lo, hi = median_interval([rng.expovariate(1.0) for _ in range(15)])
        hits += lo <= 0.693147 <= hi
    assert 0.95 <= hits / 2000 <= 0.985


def test_module_benchmark_table_pairs_attnlab_with_timm():
    from attnlab.bench import modules

    rows = modules.run(["se", "simam"], shape=(2, 32, 5, 5), rounds=6)
    by_name = {r["name"]: r for r in rows}
    assert by_name["simam"]["vs_timm"] is None  # timm has no SimAM
    se = by_name["se"]["vs_timm"]
    if modules.timm_counterparts(32):  # timm is a dev extra
        assert se.ci is not None and se.ci[0] <= se.median <= se.ci[1]
    table = modules.to_markdown(rows, (2, 32, 5, 5), 6)
    assert "95 % confidence interval" in table and table.count("\n| `") == 2


# the modules bench/modules.py times against timm's, at the bench's default width 256, and SE at 64, SK at 1024
TIMMS_AT_256 = ("se", "eca", "ese", "ceca", "ecam", "lcbam", "cbam", "gc", "gca", "non_local", "bat", "sk", "splat")
TIMMS_AT_256 += ("coord", "scoord", "ela", "strip", "sra", "lambda", "halo")


def test_every_timm_counterpart_of_the_bench_is_checked():
    pytest.importorskip("timm")
    from attnlab.bench import modules

    assert set(modules.timm_counterparts(256)) == set(TIMMS_AT_256)


@pytest.mark.parametrize(("name", "channels"), [*((n, 256) for n in TIMMS_AT_256), ("se", 64), ("sk", 1024)])
def test_module_benchmark_times_timm_modules_that_compute_what_attnlabs_compute(name, channels):
    pytest.importorskip("timm")
    from test_reference_timm import copy_to_timm, randomize, same_dropout_masks, timm_size

    from attnlab.bench import modules

    makers = modules.timm_counterparts(channels)
    if name not in makers:
        pytest.skip(f"this timm has no {name}")
    torch.manual_seed(0)
    ours, theirs = attnlab.create_attention(name, channels).double(), makers[name]().double()
    copy_to_timm(name, randomize(ours), theirs)
    same_dropout_masks(ours, theirs)
    x = torch.randn(2, channels, *timm_size(name, {}, (7, 5)), dtype=torch.float64)
    for train in (False, True):
        ours.train(train), theirs.train(train)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-12)


def test_trainer_benchmark_reports_the_ratio_of_its_throughputs(capsys):
    from attnlab.bench import train

    assert train.main(["--train-limit", "64", "--batch-size", "32", "--rounds", "1", "--attention", "se"]) == 0
    out = capsys.readouterr().out
    assert "resnet18 + se on mnist5k (64 images, batch 32)" in out
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in out.splitlines() if line.startswith("| ")}
    bare = float(rows["bare PyTorch"][0])
    trainer, ratio = (float(v) for v in rows["attnlab trainer"])
    # "trainer / bare" is the throughputs' ratio (> 1: the trainer is faster), to the table's rounding (0.05, 0.0005)
    assert bare > 0 and trainer > 0
    assert abs(ratio - trainer / bare) <= 5e-4 + trainer / bare * (0.05 / trainer + 0.05 / bare)


def fake_timing(planned, calls):
    """interleaved_samples that runs each step once (they must run) and returns ``planned`` seconds per round."""

    def interleaved_samples(fns, device, *, rounds, warmup=1):
        assert set(fns) == set(planned) and all(len(v) == rounds for v in planned.values())
        for fn in fns.values():
            fn()
        calls.append(sorted(fns))
        return planned

    return interleaved_samples


def test_segmentation_benchmark_reports_its_timings_as_documented(monkeypatch):
    from attnlab.bench import segment
    from attnlab.models.registry import create_model

    calls = []
    # seconds per step; per round ref / ours = 2, 4, 1.5
    monkeypatch.setattr(
        segment, "interleaved_samples", fake_timing({"ours": [0.5, 0.25, 1.0], "ref": [1.0, 1.0, 1.5]}, calls)
    )
    rows = segment.run(["attention_unet", "res_unet"], width=4, depth=4, batch=2, crop=32, rounds=3)
    assert calls == [["ours", "ref"]] * 2
    assert [r["model"] for r in rows] == ["attention_unet", "res_unet"]
    assert rows[1]["reference"] == "attnlab unet"  # no MONAI counterpart for the residual variants
    assert rows[0]["reference"] in ("AttentionUnet", "attnlab unet")  # MONAI's when it is installed
    for r in rows:
        assert r["crops_s"] == pytest.approx(2 / 0.5)  # batch / ours' median time
        assert r["speed"].median == pytest.approx(2.0)  # the median of per-round ref / ours: > 1 is faster
        assert r["params"] == sum(p.numel() for p in create_model(r["model"], width=4, depth=4).parameters())
    plain = sum(p.numel() for p in create_model("unet", width=4, depth=4).parameters())
    assert rows[1]["ref_params"] == plain
    table = segment.to_markdown(rows, width=4, depth=4, batch=2, crop=32, rounds=3)
    assert table.count("\n| ") == 3 and "speed / reference" in table
    assert "| res_unet | 4.0 |" in table and "| 2.000 [" in table


def test_video_benchmark_times_the_temporal_modules_in_a_clip_backbone(monkeypatch):
    from attnlab.bench import video
    from attnlab.models.registry import create_model

    calls = []
    planned = {"none": [1.0, 2.0], "tam": [1.5, 2.0], "gltr": [3.0, 3.0]}
    monkeypatch.setattr(video, "interleaved_samples", fake_timing(planned, calls))
    rows = video.backbone_rows(("tam", "gltr"), frames=2, batch=1, size=32, rounds=2)
    assert calls == [["gltr", "none", "tam"]]
    assert [r["module"] for r in rows] == ["none", "tam", "gltr"]
    assert [r["ms"] for r in rows] == pytest.approx([1500.0, 1750.0, 3000.0])  # the median time
    assert [r["ratio"].median for r in rows] == pytest.approx([1.0, 1.25, 2.25])  # per-round time / plain
    assert rows[0]["params"] == sum(p.numel() for p in create_model("resnet18", num_classes=10).parameters())
    assert rows[1]["params"] > rows[0]["params"] and rows[2]["params"] > rows[0]["params"]
    nl = video.nonlocal_rows([(16, 4)], frames=2, batch=1, rounds=2)
    if nl:  # pytorchvideo (the [bench] extra) is installed: its block with our weights gives our numbers
        assert nl[0]["max_diff"] < 1e-5
    table = video.to_markdown(nl, rows, frames=2, batch=1, size=32, rounds=2)
    assert "| tam | 1750 |" in table and "| gltr | 3000 |" in table and "time / plain" in table
