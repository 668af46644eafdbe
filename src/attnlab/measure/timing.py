"""Interleaved timing and peak-memory measurement, on CPU or CUDA.

Candidates are timed in rounds, one call each per round: drift in the machine's speed (other load,
turbo, heat) touches all of them alike. The orders of the rounds form a Williams design, so over each
cycle of rounds every candidate runs right after every other one equally often: none inherits another's
freed memory and cold caches more than the rest. The median over rounds is reported.

CPU peak memory is the rise of the process's resident-set high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs``) over the resident set before the call. glibc is told to serve every
allocation above 64 KiB by mmap, so freed tensors go back to the kernel at once and the high-water
mark sees each call's own peak.
"""

from __future__ import annotations

import ctypes
import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from math import comb
from pathlib import Path
from typing import NamedTuple

import torch

__all__ = [
    "interleaved_samples",
    "interleaved_times",
    "median_interval",
    "paired_ratio",
    "PairedRatio",
    "bracket_meaning",
    "format_ratio",
    "peak_memory_bytes",
    "synchronize",
    "williams_orders",
]

_M_MMAP_THRESHOLD = -3  # mallopt parameter, from glibc's malloc.h


def _prefer_mmap() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        libc.malloc_trim(0)  # hand back what earlier frees left in the heap, so RSS is what is live
    except OSError:  # not glibc: the rise of the high-water mark may then underestimate the peak
        pass


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(
    fns: Mapping[str, Callable[[], object]], device: torch.device, *, rounds: int, warmup: int = 1
) -> dict[str, float]:
    """Median seconds per call of each function, over ``rounds`` interleaved rounds."""
    samples = interleaved_samples(fns, device, rounds=rounds, warmup=warmup)
    return {name: statistics.median(s) for name, s in samples.items()}


def interleaved_samples(
    fns: Mapping[str, Callable[[], object]], device: torch.device, *, rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds of each function's call in each round (``rounds`` values each); every round calls every function
    once, in a Williams order, so values of the same round can be paired."""
    names = list(fns)
    orders = williams_orders(len(names))
    for _ in range(warmup):
        for name in names:
            fns[name]()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in (names[i] for i in orders[r % len(orders)]):
            synchronize(device)
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            samples[name].append(time.perf_counter() - start)
    return samples


class PairedRatio(NamedTuple):
    """The median of per-round ratios, their quartiles, and the 95 % confidence interval of the median
    (``None`` under 6 rounds, where no interval from the rounds reaches 95 %)."""

    median: float
    q1: float
    q3: float
    ci: tuple[float, float] | None


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> PairedRatio:
    """Pairing by round cancels the drift of a shared machine; the quartiles show the spread of one round's
    ratio, the confidence interval how well the median is known (it narrows as rounds are added)."""
    ratios = sorted(a / b for a, b in zip(numerator, denominator, strict=True))
    if len(ratios) < 2:
        return PairedRatio(ratios[0], ratios[0], ratios[0], None)
    q1, med, q3 = statistics.quantiles(ratios, n=4)
    return PairedRatio(med, q1, q3, median_interval(ratios))


def format_ratio(r: PairedRatio) -> str:
    """'median [low, high]': the 95 % confidence interval of the median, or the quartiles under 6 rounds."""
    low, high = r.ci or (r.q1, r.q3)
    return f"{r.median:.3f} [{low:.3f}, {high:.3f}]"


def bracket_meaning(rounds: int) -> str:
    """What ``format_ratio``'s brackets hold for a table of ``rounds`` rounds (as ``median_interval`` decides)."""
    has_interval = median_interval(range(rounds)) is not None
    return "the 95 % confidence interval of that median" if has_interval else "the per-round ratios' quartiles"


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the median: the k-th smallest and k-th largest value, for the
    largest k whose coverage 1 - 2·P(Binomial(n, ½) < k) is at least ``confidence`` (the sign test's interval;
    it assumes only independent rounds). ``None`` when even (min, max) covers less."""
    v, n = sorted(values), len(values)
    k, below = 0, 0  # below = #{outcomes of Binomial(n, ½) < k+1}, out of 2**n
    while k < n // 2:
        below += comb(n, k)
        if 1 - 2 * below / 2**n < confidence:
            break
        k += 1
    return (v[k - 1], v[n - k]) if k else None


def williams_orders(n: int) -> list[list[int]]:
    """Orders of 0..n-1 in which each ordered pair (a then b) is adjacent equally often (Williams, 1949)."""
    first = [0]
    lo, hi = 1, n - 1
    while len(first) < n:  # 0, 1, n-1, 2, n-2, …
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    rows = [[(x + i) % n for x in first] for i in range(n)]
    return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory_bytes(fn: Callable[[], object], device: torch.device) -> int | None:
    """Bytes the call needs above what was allocated before it; None where it can't be measured."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    try:
        _prefer_mmap()
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
        before = _status_kib("VmRSS")
        fn()
        return (_status_kib("VmHWM") - before) * 1024
    except OSError:
        return None
