"""A comparison's table as Markdown (``attnlab compare``'s results.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..measure.label_sets import RANDOMIZATION_ROUNDS
from .tables import rate_key

__all__ = ["comparison_markdown"]


def _number(value: float) -> str:
    return "—" if value != value else f"{value:.2f}"  # NaN: not measured


def _cell(row: dict, key: str, scale: float) -> str:
    value, std = row.get(key), row.get(f"{key}_std", 0.0)
    if value is None or value != value:  # NaN: not measured for this row
        return "—"
    return f"{scale * value:.2f} ± {scale * std:.2f}" if row["runs"] > 1 else f"{scale * value:.2f}"


def _paired_lines(rows: list[dict], fields: list[str], unit: str) -> list[str]:
    """The paired tests of the rows against each baseline (``engine.compare``'s ``paired``), one line a pair, the
    figures of each seed joined by " / "; with several labels per sample, the micro-F1 difference and its
    randomization p first, and McNemar's on every label right."""
    pairs = [(r, name, t) for r in rows for name, t in (r.get("paired") or {}).items()]
    if not pairs:
        return []
    f1 = any("micro_f1_p" in t for _, _, t in pairs)
    right = "every label right" if f1 else "right"
    head = ["micro-F1 difference", "randomization p"] * f1 + [f"network alone {right}", f"baseline alone {right}", "p"]
    f1_test = f"micro-F1 by approximate randomization, {RANDOMIZATION_ROUNDS:,} shuffles"
    what = "McNemar's exact test" + f" of every label of a sample right; {f1_test}" * f1
    lines = [
        "",
        f"Paired tests on the same test {unit} ({what}; each seed's run against the baseline fitted "
        "in the first run; a gain well inside the run-to-run spread needs p well below 0.05 to mean anything):",
        "",
        f"| {' | '.join(fields)} | against | {' | '.join(head)} |",
        "|" + "---|" * (len(fields) + 1) + "---:|" * len(head),
    ]
    for r, name, t in pairs:
        values = " | ".join(str(r[f]) for f in fields)
        cells = [" / ".join(f"{100 * v:+.2f}" for v in t.get("micro_f1_diff", []))] * f1
        cells += [" / ".join(f"{v:.2g}" for v in t.get("micro_f1_p", []))] * f1
        cells += [" / ".join(str(v) for v in t[k]) for k in ("model_only", "baseline_only")]
        cells.append(" / ".join(f"{v:.2g}" for v in t["p"]))
        lines.append(f"| {values} | {name} | {' | '.join(cells)} |")
    return lines


def _difference(row: dict, scale: float) -> str:
    """The row's mean paired difference from the reference and its interval, or — (the reference, a baseline,
    or no interval)."""
    diff, low, high = row.get("diff"), row.get("diff_low"), row.get("diff_high")
    if diff is None or diff != diff:
        return "—"
    if low is None or low != low:
        return f"{scale * diff:+.2f}"
    return f"{scale * diff:+.2f} [{scale * low:+.2f}, {scale * high:+.2f}]"


def _verdict_note(rows: list[dict], monitor: str) -> list[str]:
    how = sorted({r["interval"] for r in rows if r.get("interval")})
    if not how:
        return []
    return [
        "",
        f"Δ: each row minus {rows[0]['reference']} (the reference row), seed by seed on the test split "
        f"({'; '.join(how)}); verdict: better or worse when the 95 % interval excludes 0 (on the side {monitor} "
        "improves), else no difference. A one-point difference between seed pairs that spread by one point needs "
        "at least 7 seeds to be told apart (docs/training.md).",
    ]


def comparison_markdown(
    rows: list[dict],
    *,
    title: str,
    recipe: Any,
    seeds: list[int],
    fields: list[str],
    is_fraction: Callable[[str], bool],
) -> str:
    """A comparison's rows (``engine.compare.aggregate``) as Markdown: the varied fields, the monitored metric on
    the test split (mean ± std) and on validation, cost; then every test metric of each row (baselines
    included), fractions in percent."""
    r0 = rows[0]
    monitor, metric, unit = r0["monitor"], r0["metric"], r0["unit"]
    rate = "train_" + rate_key(unit)
    scale = 100 if is_fraction(monitor) else 1
    shown, val_shown = (f"{metric} (%)", f"{monitor} (%)") if scale == 100 else (metric, monitor)
    lines = [
        f"# {title}: {', '.join(fields)} compared",
        "",
        f"One recipe for all: {recipe.optimizer}, {recipe.schedule} schedule, weight decay {recipe.weight_decay}; "
        f"{r0['plan'].removeprefix('recipe: ')}; seeds {', '.join(map(str, seeds))}. {metric}: the test split, "
        f"scored once with each run's best checkpoint on validation, mean ± std over seeds; {monitor}: that "
        "checkpoint's validation figure, mean. Latency: CPU, batch 1. Baselines are fitted on the training split "
        "and scored on the same test split.",
        "",
        f"| {' | '.join(fields)} | {shown} | {val_shown} | Δ vs {r0['reference']} (95 % CI) | verdict | params "
        f"| GFLOPs | train {unit}/s | latency (ms) |",
        "|" + "---|" * len(fields) + "---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        values = " | ".join(str(r[f]) for f in fields) if r["runs"] else r["variant"] + " |" * (len(fields) - 1)
        cost = (
            f"{r['params']:,} | {r['gflops']:.3f} | {r[rate]:.0f} | {_number(r['latency_ms'])}"
            if r["runs"]
            else "— | — | — | —"
        )
        test = _cell({**r, "test_mean_std": r["test_std"]}, "test_mean", scale)
        val = _number(scale * r["val_mean"])
        lines.append(f"| {values} | {test} | {val} | {_difference(r, scale)} | {r['verdict']} | {cost} |")
    lines += _verdict_note(rows, monitor)
    lines += _paired_lines(rows, fields, unit)
    metrics = [k for k in r0 if k.startswith("test_") and not k.endswith("_std") and k not in ("test_mean",)]
    if metrics:
        lines += [
            "",
            "Every test metric (mean ± std over seeds; fractions in %):",
            "",
            f"| {' | '.join(fields)} | " + " | ".join(m.removeprefix("test_") for m in metrics) + " |",
            "|" + "---|" * len(fields) + "---:|" * len(metrics),
        ]
        for r in rows:
            values = " | ".join(str(r[f]) for f in fields) if r["runs"] else r["variant"] + " |" * (len(fields) - 1)
            cells = " | ".join(_cell(r, m, 100 if is_fraction(m) else 1) for m in metrics)
            lines.append(f"| {values} | {cells} |")
    return "\n".join(lines) + "\n"
