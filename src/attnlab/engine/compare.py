"""A fair side-by-side comparison: one recipe, the same seeds, every value of the varied fields.

``vary`` maps a config field (a task option such as ``attention`` or ``model``, or a recipe field) to the
values to try; several fields give every combination. Runs land in ``OUT/<value[-value…]>/seed<k>/``;
a finished run (summary.json) is skipped and an unfinished one resumed, so re-running the command
completes what is missing.
"""

from __future__ import annotations

import itertools
import json
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..measure.label_sets import micro_f1_bootstrap
from ..measure.seed_pairs import bootstrap_interval, t_interval, verdict
from ..measure.timing import interleaved_times
from ..report.tables import rate_key
from ..tasks import get_task
from .config import TrainConfig
from .loop import heldout_name
from .paired import paired_tests
from .run_folder import LAST, SUMMARY, load_run
from .trainer import RunOptions, fit

__all__ = ["Variant", "variants", "run_comparison", "aggregate", "reference_variant"]

# a row against the reference: what a row that is not paired (the reference itself, a baseline) shows
_NOT_PAIRED = {"reference": "", "diff": float("nan"), "diff_low": float("nan"), "diff_high": float("nan")}
_NOT_PAIRED |= {"verdict": "", "interval": ""}

Variant = dict  # field -> value, one row of the comparison


def variants(vary: dict[str, list]) -> list[Variant]:
    """Every combination of the varied values, in the order given."""
    keys = list(vary)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(vary[k] for k in keys))]


def label(variant: Variant) -> str:
    """The row's name and folder: the values joined by "-" (None: "none")."""
    return "-".join("none" if v is None else str(v).replace("/", "_") for v in variant.values()) or "base"


def run_dir(out: Path, variant: Variant, seed: int) -> Path:
    return out / label(variant) / f"seed{seed}"


def run_comparison(
    base: TrainConfig, rows: list[Variant], seeds: list[int], out: Path, opts: RunOptions
) -> list[tuple[Variant, dict]]:
    """Train every (variant, seed) not yet finished; return (variant, summary) per run."""
    results = []
    for variant in rows:
        for seed in seeds:
            folder = run_dir(out, variant, seed)
            done = folder / SUMMARY
            if not done.is_file():
                resume = (folder / LAST).is_file()
                # the baselines depend on the data alone: fitted once, in the first run, which aggregate reads
                first = not results
                fit(base.replace(**variant, seed=seed), replace(opts, out=folder, resume=resume, baselines=first))
            summary = json.loads(done.read_text())
            summary.setdefault("unit", base.task_class.unit)  # (summaries written before they named it)
            results.append((variant, summary))
    return results


def _latency_ms(out: Path, rows: list[Variant], seed: int, rounds: int = 20) -> dict[str, float]:
    """Batch-1 CPU inference latency of each trained model, interleaved."""
    fns = {}
    for variant in rows:
        run = load_run(run_dir(out, variant, seed))
        inputs = run.task.example_input()
        fns[label(variant)] = lambda model=run.model, inputs=inputs: model(*inputs)
    with torch.inference_mode():
        times = interleaved_times(fns, torch.device("cpu"), rounds=rounds, warmup=2)
    return {k: t * 1e3 for k, t in times.items()}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _paired(runs: list[dict], baselines: dict[str, dict]) -> dict[str, dict[str, list]]:
    """baseline -> each field of ``paired_tests`` as a list over the row's runs (seeds), for the runs that kept
    their test predictions (runs made before they did are left out)."""
    out: dict[str, dict[str, list]] = {}
    for run in runs:
        if "test_predictions" not in run:
            continue
        for name, test in paired_tests(run["test_predictions"], run["test_targets"], baselines).items():
            for key, value in test.items():
                out.setdefault(name, {}).setdefault(key, []).append(value)
    return out


def reference_variant(rows: list[Variant], reference: str | None) -> Variant:
    """The row the others are paired with: the one labelled ``reference`` (``label``'s names: "none", "se",
    "4-cbam" …), else the one without attention where attention is varied, else the first."""
    labels = [label(v) for v in rows]
    if reference is not None:
        if reference not in labels:
            raise ValueError(f"--reference: expected one of the compared rows {labels}, got {reference!r}")
        return rows[labels.index(reference)]
    plain = [v for v in rows if "attention" in v and v["attention"] is None]
    return plain[0] if plain else rows[0]


def _versus(runs: list[dict], reference: list[dict], metric: str, higher_is_better: bool) -> dict:
    """A row's runs against the reference's, seed by seed (``measure.seed_pairs``): the mean difference of
    ``metric``, its 95 % interval and the verdict; {} when no seed pairs up."""
    by_seed = {r["seed"]: r for r in reference}
    pairs = [(r, by_seed[r["seed"]]) for r in runs if r["seed"] in by_seed]
    if not pairs:
        return {}
    if len(pairs) >= 2:
        diff, low, high = t_interval([a["test_metrics"][metric] - b["test_metrics"][metric] for a, b in pairs])
        how = f"t-interval over {len(pairs)} seed pairs"
    elif all("test_predictions" in r for r in pairs[0]):
        diff, low, high, how = _bootstrap(*pairs[0])
    else:
        a, b = pairs[0]
        return {"diff": a["test_metrics"][metric] - b["test_metrics"][metric], "verdict": "one seed: no interval"}
    judged = verdict(low, high, higher_is_better=higher_is_better)
    return {"diff": diff, "diff_low": low, "diff_high": high, "verdict": judged, "interval": how}


def _bootstrap(run: dict, reference: dict) -> tuple[float, float, float, str]:
    """(difference, low, high, how) of one seed pair by a paired bootstrap of its test samples: of accuracy, or with
    several labels per sample (0/1 rows: the monitor is micro-F1) of micro-F1."""
    truth = np.asarray(run["test_targets"])
    mine, theirs = (np.asarray(r["test_predictions"]) for r in (run, reference))
    if truth.ndim == 2:
        return (*micro_f1_bootstrap(truth, mine, theirs), "paired bootstrap of the test samples' micro-F1 (one seed)")
    return (*bootstrap_interval(mine == truth, theirs == truth), "paired bootstrap of the test samples (one seed)")


def aggregate(
    results: list[tuple[Variant, dict]],
    out: Path,
    seeds: list[int],
    *,
    latency: bool = True,
    reference: str | None = None,
) -> list[dict]:
    """One row per variant: the monitored metric on the test split (each run's best-on-validation checkpoint,
    scored once) and its best validation value, mean ± std over seeds, every test metric's mean and std, the
    recipe each run planned, and cost, and its paired difference from the reference row (``reference_variant``)
    with a verdict; then one row per classical baseline the task measured (same test split)."""
    by_label: dict[str, tuple[Variant, list[dict]]] = {}
    for variant, summary in results:
        by_label.setdefault(label(variant), (variant, []))[1].append(summary)
    times = _latency_ms(out, [v for v, _ in by_label.values()], seeds[0]) if latency else {}
    ref = label(reference_variant([v for v, _ in by_label.values()], reference))
    first = results[0][1]  # the run's own direction (a task's monitor may depend on its options), else its class's
    higher_is_better = first.get("monitor_mode", get_task(first["task"]).monitor[1]) == "max"
    rows = []
    for name, (variant, runs) in by_label.items():
        monitor = runs[0]["monitor"]
        metric = heldout_name(monitor)
        rate = "train_" + rate_key(runs[0]["unit"])
        test_mean, test_std = _mean_std([r["test_metrics"][metric] for r in runs])
        metrics = {}
        for key in runs[0]["test_metrics"]:
            metrics[key], metrics[f"{key}_std"] = _mean_std([r["test_metrics"][key] for r in runs])
        rows.append(
            {
                "variant": name,
                **{k: ("none" if v is None else v) for k, v in variant.items()},
                "runs": len(runs),
                "monitor": monitor,
                "metric": metric,
                "unit": runs[0]["unit"],
                "test_mean": test_mean,
                "test_std": test_std,
                "val_mean": statistics.fmean(r[f"best_{monitor}"] for r in runs),
                "epochs": statistics.fmean(r["epochs"] for r in runs),
                "plan": runs[0]["plan"]["note"],
                "params": runs[0]["params"],
                "gflops": runs[0]["gflops"],
                rate: statistics.fmean(r[rate] for r in runs),
                "latency_ms": times.get(name, float("nan")),
                **metrics,
                "paired": _paired(runs, results[0][1].get("baselines", {})),
                **_NOT_PAIRED,
                "reference": ref,
                "verdict": "reference" if name == ref else "—",
                **({} if name == ref else _versus(runs, by_label[ref][1], metric, higher_is_better)),
            }
        )
    first = results[0][1]
    for name, scores in first.get("baselines", {}).items():  # deterministic: the same on every run
        monitor, metric = first["monitor"], heldout_name(first["monitor"])
        row = dict.fromkeys(rows[0], float("nan"))
        row.update(_NOT_PAIRED)
        row.update({"variant": f"{name} (baseline)", "runs": 0, "monitor": monitor, "metric": metric})
        row.update({"params": 0, "gflops": 0.0, "unit": rows[0]["unit"], "plan": "", "epochs": 0})
        row.update({k: "—" for k in results[0][0]})
        row.update({"test_mean": scores[metric], "test_std": 0.0, "val_mean": scores.get(monitor, float("nan"))})
        row["paired"] = {}
        row.update({k: v for k, v in scores.items() if k in row})
        row.update({f"{k}_std": 0.0 for k in scores if f"{k}_std" in row})
        rows.append(row)
    return rows
