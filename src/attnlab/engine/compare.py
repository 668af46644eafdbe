"""A fair side-by-side comparison: one recipe, the same seeds, every attention module.

Runs land in ``OUT/<attention>/seed<k>/``; a finished run (summary.json) is skipped and an unfinished one
resumed, so re-running the command completes what is missing.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import replace
from pathlib import Path

import torch

from ..bench.timing import interleaved_times
from .config import TrainConfig
from .evaluation import load_run_model
from .trainer import RunOptions, fit

__all__ = ["run_comparison", "aggregate", "results_markdown", "results_csv"]


def run_dir(out: Path, attention: str | None, seed: int) -> Path:
    return out / (attention or "none") / f"seed{seed}"


def run_comparison(
    base: TrainConfig, attentions: list[str | None], seeds: list[int], out: Path, opts: RunOptions
) -> list[dict]:
    """Train every (attention, seed) not yet finished; return the summaries, one per run."""
    summaries = []
    for attention in attentions:
        for seed in seeds:
            folder = run_dir(out, attention, seed)
            done = folder / "summary.json"
            if not done.is_file():
                resume = (folder / "last.safetensors").is_file()
                fit(replace(base, attention=attention, seed=seed), replace(opts, out=folder, resume=resume))
            summaries.append(json.loads(done.read_text()))
    return summaries


def _latency_ms(out: Path, attentions: list[str | None], seed: int, rounds: int = 20) -> dict[str | None, float]:
    """Batch-1 CPU inference latency of each trained model, interleaved."""
    fns = {}
    for a in attentions:
        model, bundle, _, _ = load_run_model(run_dir(out, a, seed))
        x = torch.zeros(1, bundle.in_chans, bundle.image_size, bundle.image_size)
        fns[a] = lambda model=model, x=x: model(x)
    with torch.inference_mode():
        times = interleaved_times(fns, torch.device("cpu"), rounds=rounds, warmup=2)
    return {a: t * 1e3 for a, t in times.items()}


def aggregate(summaries: list[dict], out: Path, seeds: list[int]) -> list[dict]:
    by_attention: dict[str | None, list[dict]] = {}
    for s in summaries:
        by_attention.setdefault(s["attention"], []).append(s)
    latency = _latency_ms(out, list(by_attention), seeds[0])
    rows = []
    for a, runs in by_attention.items():
        finals = [r["final_val_acc"] for r in runs]
        rows.append(
            {
                "attention": a or "none",
                "runs": len(runs),
                "acc_mean": statistics.fmean(finals),
                "acc_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
                "best_mean": statistics.fmean(r["best_val_acc"] for r in runs),
                "params": runs[0]["params"],
                "gflops": runs[0]["gflops"],
                "train_images_per_s": statistics.fmean(r["train_images_per_s"] for r in runs),
                "latency_ms": latency[a],
            }
        )
    return rows


def results_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def results_markdown(rows: list[dict], config: TrainConfig, seeds: list[int]) -> str:
    lines = [
        f"# {config.model} on {config.data}: attention modules compared",
        "",
        f"One recipe for all: {config.epochs} epochs, batch {config.batch_size}, {config.optimizer} lr {config.lr}, "
        f"{config.schedule} schedule, weight decay {config.weight_decay}; seeds {', '.join(map(str, seeds))}. "
        "Accuracy: final test top-1, mean ± std over seeds. Latency: CPU, batch 1.",
        "",
        "| attention | top-1 (%) | best (%) | params | GFLOPs | train img/s | latency (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['attention']} | {100 * r['acc_mean']:.2f} ± {100 * r['acc_std']:.2f} | "
            f"{100 * r['best_mean']:.2f} | {r['params']:,} | {r['gflops']:.3f} | "
            f"{r['train_images_per_s']:.0f} | {r['latency_ms']:.2f} |"
        )
    return "\n".join(lines) + "\n"
