"""The timing helpers behind every benchmark table."""

import random

import torch

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


def test_trainer_benchmark_runs_both_loops(capsys):
    from attnlab.bench import train

    assert train.main(["--train-limit", "64", "--batch-size", "32", "--rounds", "1", "--attention", "se"]) == 0
    out = capsys.readouterr().out
    trainer = next(line for line in out.splitlines() if line.startswith("| attnlab trainer"))
    images_per_s, ratio = (float(x) for x in trainer.strip("| ").split("|")[1:3])
    assert images_per_s > 0 and ratio > 0


def test_segmentation_benchmark_pairs_each_unet_with_a_reference():
    from attnlab.bench import segment

    rows = segment.run(["attention_unet", "res_unet"], width=4, depth=4, batch=2, crop=32, rounds=2)
    assert [r["model"] for r in rows] == ["attention_unet", "res_unet"]
    assert rows[1]["reference"] == "attnlab unet"  # no MONAI counterpart for the residual variants
    assert rows[0]["reference"] in ("AttentionUnet", "attnlab unet")  # MONAI's when it is installed
    assert all(r["crops_s"] > 0 and r["speed"].median > 0 for r in rows)
    table = segment.to_markdown(rows, width=4, depth=4, batch=2, crop=32, rounds=2)
    assert table.count("\n| ") == 3 and "speed / reference" in table


def test_video_benchmark_times_the_temporal_modules_in_a_clip_backbone():
    from attnlab.bench import video

    rows = video.backbone_rows(("tam", "gltr"), frames=2, batch=1, size=32, rounds=2)
    assert [r["module"] for r in rows] == ["none", "tam", "gltr"]
    assert rows[1]["params"] > rows[0]["params"] and all(r["ms"] > 0 and r["ratio"].median > 0 for r in rows)
    nl = video.nonlocal_rows([(16, 4)], frames=2, batch=1, rounds=2)
    if nl:  # pytorchvideo (the [bench] extra) is installed: its block with our weights gives our numbers
        assert nl[0]["max_diff"] < 1e-5
    table = video.to_markdown(nl, rows, frames=2, batch=1, size=32, rounds=2)
    assert "| tam |" in table and "| gltr |" in table and "time / plain" in table
