"""The timing helpers behind every benchmark table."""

import torch

from attnlab.bench.timing import interleaved_samples, paired_ratio


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
    assert paired_ratio([2.0, 2.0, 4.0, 2.0], [1.0, 1.0, 2.0, 1.0]) == (2.0, 2.0, 2.0)
    med, q1, q3 = paired_ratio([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)
    assert (med, q1, q3) == (3.0, 1.5, 4.5)
    assert paired_ratio([3.0], [2.0]) == (1.5, 1.5, 1.5)
