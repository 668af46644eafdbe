"""Benchmark of the formula: naive code, attnlab's math and auto backends, and torch's SDPA.

For each sequence length N (B=4, H=8, E=64 by default): median forward time and peak memory of

    naive   torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(E), dim=-1) @ v
    math    attnlab.scaled_dot_product_attention(..., backend="math")
    auto    attnlab.scaled_dot_product_attention(...)                   (the default)
    torch   torch.nn.functional.scaled_dot_product_attention(...)

timed interleaved in one run and printed as a Markdown table with ratios to torch's SDPA.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..functional import scaled_dot_product_attention
from ..measure.machine import machine
from ..measure.timing import interleaved_times, peak_memory_bytes

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def naive(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


def candidates(q, k, v):
    return {
        "naive formula": lambda: naive(q, k, v),
        "attnlab math": lambda: scaled_dot_product_attention(q, k, v, backend="math"),
        "attnlab auto": lambda: scaled_dot_product_attention(q, k, v),
        "torch SDPA": lambda: F.scaled_dot_product_attention(q, k, v),
    }


def _inputs(n: int, batch: int, heads: int, dim: int, dtype: torch.dtype, device: torch.device):
    g = torch.Generator(device=device).manual_seed(n)
    return tuple(torch.randn(batch, heads, n, dim, generator=g, device=device, dtype=dtype) for _ in range(3))


def run(
    sizes: Sequence[int],
    *,
    batch: int,
    heads: int,
    dim: int,
    dtype: torch.dtype,
    device: torch.device,
    min_rounds: int,
    budget_s: float,
) -> list[dict]:
    # All timings first: measuring CPU memory switches glibc to mmap for every large allocation
    # (see timing.py), which would slow every later timing with page faults.
    times, peaks, rounds = {}, {}, {}
    with torch.inference_mode():
        for n in sizes:
            fns = candidates(*_inputs(n, batch, heads, dim, dtype, device))
            first = interleaved_times(fns, device, rounds=1)  # also the warm-up
            rounds[n] = max(min_rounds, int(budget_s / max(sum(first.values()), 1e-9)))
            times[n] = interleaved_times(fns, device, rounds=rounds[n], warmup=0)
        for n in sizes:
            fns = candidates(*_inputs(n, batch, heads, dim, dtype, device))
            peaks[n] = {name: peak_memory_bytes(fn, device) for name, fn in fns.items()}
    rows = []
    for n in sizes:
        ref_t, ref_m = times[n]["torch SDPA"], peaks[n]["torch SDPA"]
        for name, t in times[n].items():
            m = peaks[n][name]
            rows.append(
                {
                    "N": n,
                    "method": name,
                    "ms": t * 1e3,
                    "time_ratio": t / ref_t,
                    "rounds": rounds[n],
                    "peak_mib": None if m is None else m / 2**20,
                    "mem_ratio": None if m is None or not ref_m else m / ref_m,
                }
            )
    return rows


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "| N | method | time (ms) | time / torch SDPA | peak memory (MiB) | memory / torch SDPA |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        mib = "n/a" if r["peak_mib"] is None else f"{r['peak_mib']:.1f}"
        mem = "n/a" if r["mem_ratio"] is None else f"{r['mem_ratio']:.2f}"
        lines.append(f"| {r['N']} | {r['method']} | {r['ms']:.2f} | {r['time_ratio']:.3f} | {mib} | {mem} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256,1024,4096", help="sequence lengths N (default 256,1024,4096)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--rounds", type=int, default=5, help="minimum timed rounds per size (default 5)")
    p.add_argument("--budget", type=float, default=10.0, help="seconds of timing per size, at least (default 10)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = run(
        sizes,
        batch=args.batch,
        heads=args.heads,
        dim=args.dim,
        dtype=DTYPES[args.dtype],
        device=device,
        min_rounds=args.rounds,
        budget_s=args.budget,
    )
    rounds = ", ".join(str(r["rounds"]) for r in rows[:: len(candidates(None, None, None))])
    print(
        f"B={args.batch}, H={args.heads}, E={args.dim}, {args.dtype}; {machine(device)}; forward in "
        f"inference mode; median of {rounds} interleaved rounds per N\n"
    )
    print(to_markdown(rows))
    return 0
