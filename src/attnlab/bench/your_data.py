"""Every default on a user's own data: each task trained with its defaults on user-like folders (``user_data``).

For each case: the folder is built under ``--root`` (reused when it is there, built with the same arguments),
then ``attnlab train --task T --data <folder data set> --data-dir <folder> --out <runs>/<case>`` runs with the
task's defaults, one run at a time, in a process of its own whose working folder is ``--runs`` (where the video
task makes the default image run it transfers from, once). The table gives the model's held-out figure and the
best classical baseline's on the same split (summary.json's ``test_metrics`` and ``baselines``), the gap in
points, the wall time of the whole command, and whether the target is met: at most 3 points below the baseline
(or above it) within 300 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._names import Registry
from ..measure.machine import machine
from ..tasks.video.transfer import DEFAULT_BACKBONE
from . import user_data
from .user_data import BuiltSet

TARGET_POINTS = 3.0  # the model may trail the best baseline by this much
TARGET_SECONDS = 300.0
BUILD_VERSION = 1  # bump when a builder changes what it writes: folders built before are rebuilt
DEFAULT_ROOT = Path(tempfile.gettempdir()) / "attnlab-your-data"


@dataclass(frozen=True)
class Case:
    """One task on one built folder: ``build(folder, **size)`` (``quick`` under ``--quick``)."""

    task: str
    build: Callable[..., BuiltSet]
    size: dict
    quick: dict
    what: str  # the material in a few words, for the table
    quick_flags: tuple[str, ...] = ()  # train flags added under --quick (besides --epochs 1)


CASES: Registry[Case] = Registry("--cases", "attnlab bench your-data --help")
CASES.add("digits32", Case("classify", user_data.digit_folder, {"n": 1400, "size": 32}, {"n": 100}, "digits, 32 px"))
CASES.add(
    "photos32",
    Case("classify", user_data.photo_crops_folder, {"n": 1800, "size": 32}, {"n": 90, "size": 32}, "photos, 32 px"),
)
CASES.add(
    "photos128",
    Case("classify", user_data.photo_crops_folder, {"n": 900, "size": 128}, {"n": 45, "size": 128}, "photos, 128 px"),
)
CASES.add("docs850", Case("text", user_data.text_csv, {"n": 850}, {"n": 200}, "package docs, English"))
CASES.add("docs3000", Case("text", user_data.text_csv, {"n": 3000}, {"n": 300}, "package docs, English"))
CASES.add(
    "clips90",
    Case(
        "video",
        user_data.clip_folder,
        {"n": 90},
        {"n": 12},
        "photo pans and zooms, 16 × 64 px",
        quick_flags=("--backbone", "none"),  # no default image run to train first in a smoke test
    ),
)
CASES.add(
    "cells16",
    Case("segment", user_data.cell_folder, {"n": 16, "size": 256}, {"n": 4, "size": 128}, "nuclei crops, 256 px"),
)


# -- building ---------------------------------------------------------------------------------------------------
def built_set(root: Path, name: str, case: Case, *, quick: bool) -> tuple[BuiltSet, float, bool]:
    """(the case's folder, seconds its build took, whether it was reused). A folder is reused when its record
    (``<folder>.built.json``) says it was built with the same builder and arguments; a folder with another
    record is rebuilt; a folder with none is refused (it is not this benchmark's)."""
    folder = root / (f"{name}-quick" if quick else name)
    record = folder.with_name(folder.name + ".built.json")
    kwargs = case.quick if quick else case.size
    wanted = {"version": BUILD_VERSION, "builder": case.build.__name__, "kwargs": kwargs}
    if record.is_file():
        saved = json.loads(record.read_text())
        if {k: saved.get(k) for k in wanted} == wanted and folder.is_dir():
            built = saved["built"]
            return BuiltSet(**{**built, "root": Path(built["root"])}), saved["seconds"], True
        shutil.rmtree(folder, ignore_errors=True)  # built by this benchmark with other arguments
    elif folder.exists():
        raise FileExistsError(f"--root: {folder} exists but was not built by this benchmark; pass another --root")
    start = time.perf_counter()
    built = case.build(folder, **kwargs)
    seconds = time.perf_counter() - start
    record.write_text(json.dumps({**wanted, "built": built.to_dict(), "seconds": seconds}, indent=1))
    return built, seconds, False


# -- reading a run ----------------------------------------------------------------------------------------------
def read_scores(summary: dict, task: str) -> dict:
    """The model's held-out figure and the best baseline's from a run's summary.json: {metric, model, baseline,
    baseline_value, gap (points, > 0: the model is better), train_seconds, problems (what was missing)}."""
    from ..tasks import get_task

    problems = []
    monitor = summary.get("monitor")
    if not isinstance(monitor, str):
        return {"problems": ["summary.json has no monitor"]}
    key = "test_" + monitor.removeprefix("val_")
    cls = get_task(task)
    direction = cls.monitor[1] if cls.monitor[0] == monitor else ("min" if key.endswith("loss") else "max")
    tests = summary.get("test_metrics")
    model = tests.get(key) if isinstance(tests, dict) else None
    if model is None:
        problems.append(f"summary.json has no test_metrics[{key!r}] (held-out figures)")
    scores = {
        name: values[key]
        for name, values in (summary.get("baselines") or {}).items()
        if isinstance(values, dict) and values.get(key) is not None
    }
    if not scores:
        problems.append(f"no baseline with {key!r} in summary.json's baselines")
    pick = max if direction == "max" else min
    best = pick(scores, key=scores.get) if scores else None
    scale = 100.0 if cls.is_fraction(monitor) else 1.0
    gap = None
    if model is not None and best is not None:
        gap = (model - scores[best]) * scale * (1 if direction == "max" else -1)
    return {
        "metric": key,
        "fraction": scale == 100.0,
        "model": model,
        "baseline": best,
        "baseline_value": scores.get(best) if best else None,
        "gap": gap,
        "p": ((summary.get("paired") or {}).get(best) or {}).get("p"),  # McNemar's, where the task pairs them
        "train_seconds": summary.get("wall_seconds"),
        "problems": problems,
    }


# -- running ----------------------------------------------------------------------------------------------------
def train_command(case: Case, built: BuiltSet, out: Path, *, quick: bool) -> list[str]:
    extra = ["--epochs", "1", *case.quick_flags] if quick else []
    return [
        *(sys.executable, "-m", "attnlab", "train", "--task", case.task, "--data", built.layout),
        *("--data-dir", str(built.root), "--out", str(out), "--overwrite", *extra),
    ]


def run_case(name: str, case: Case, root: Path, runs: Path, *, quick: bool) -> dict:
    """Build (or reuse) the case's folder, train on it in a process of its own, read its summary: one row."""
    built, build_seconds, reused = built_set(root, name, case, quick=quick)
    out = runs / name
    backbone = runs / DEFAULT_BACKBONE  # the video task's default --backbone, relative to its working folder
    had_backbone = backbone.is_dir()
    command = train_command(case, built, out, quick=quick)
    log = runs / f"{name}.log"
    start = time.perf_counter()
    with log.open("w") as f:
        result = subprocess.run(command, cwd=runs, stdout=f, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - start
    row = {
        "case": name,
        "task": case.task,
        "data": built.layout,
        "what": case.what,
        "counts": {split: built.total(split) for split in built.counts},
        "classes": len(built.classes),
        "sources": built.sources,
        "build_seconds": build_seconds,
        "reused": reused,
        "command": " ".join(command),
        "wall_seconds": wall,
        "log": str(log),
        "made_backbone_run": case.task == "video" and not had_backbone and backbone.is_dir(),
        "quick_flags": list(case.quick_flags) if quick else [],
    }
    summary_path = out / "summary.json"
    if result.returncode != 0 or not summary_path.is_file():
        lines = log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
        return {**row, "error": f"exit {result.returncode}: {lines[-1].strip()}", "problems": []}
    row.update(read_scores(json.loads(summary_path.read_text()), case.task))
    in_time = wall <= TARGET_SECONDS  # a run over time misses the target whatever its figures
    row["met"] = (None if in_time else False) if row.get("gap") is None else row["gap"] >= -TARGET_POINTS and in_time
    return row


# -- the table --------------------------------------------------------------------------------------------------
def _value(value: float | None, fraction: bool) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f} %" if fraction else f"{value:.4f}"


def _row_line(r: dict) -> str:
    counts = " / ".join(str(v) for v in r["counts"].values())
    case = f"{r['case']}: {r['data']}, {r['what']}, {counts}"
    if "error" in r:
        return f"| {r['task']} | {case} | failed | — | — | {r['wall_seconds']:.0f} | no |"
    metric = r.get("metric", "?").removeprefix("test_")
    model = f"{_value(r.get('model'), r.get('fraction', True))} {metric}"
    base = "—" if r.get("baseline") is None else f"{_value(r['baseline_value'], r['fraction'])} ({r['baseline']})"
    gap = "—" if r.get("gap") is None else f"{r['gap']:+.1f}"
    if r.get("gap") is not None and r.get("p") is not None:
        gap += f" (p {r['p']:.2g})"
    train = f" (train {r['train_seconds']:.0f})" if r.get("train_seconds") is not None else ""
    met = {True: "yes", False: "no", None: "?"}[r.get("met")]
    return f"| {r['task']} | {case} | {model} | {base} | {gap} | {r['wall_seconds']:.0f}{train} | {met} |"


def _grouped(sources: list[str]) -> str:
    """ "dist version: path" entries as "dist version: path, path; dist version: …"."""
    by_dist: dict[str, list[str]] = {}
    for source in sources:
        dist, _, path = source.partition(": ")
        by_dist.setdefault(dist, []).append(path)
    return "; ".join(f"{dist}: {', '.join(paths)}" for dist, paths in by_dist.items())


def to_markdown(rows: list[dict], *, root: Path, runs: Path, quick: bool) -> str:
    lines = [
        f"Each task with its defaults on user-like folders, {machine()}. `attnlab bench your-data`"
        + (" --quick (1 epoch, tiny sets: a smoke test, not a result)" if quick else "")
        + f"; sets in {root}, runs in {runs}. Target: at most {TARGET_POINTS:.0f} points below the best "
        f"classical baseline on the same held-out split, within {TARGET_SECONDS:.0f} s of wall time.",
        "",
        "| task | case (data set, material, train / val samples) | model (test) | best baseline (test) | gap, points "
        "(McNemar's p) | wall s | target met |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    lines += [_row_line(r) for r in rows]
    lines.append("")
    for r in rows:
        reused = " (reused)" if r["reused"] else ""
        notes = [f"built in {r['build_seconds']:.1f} s{reused} from {_grouped(r['sources'])}"]
        if r.get("quick_flags"):
            notes.append("--quick adds " + " ".join(r["quick_flags"]))
        if r.get("made_backbone_run"):
            notes.append("the wall time includes training the default image run it transfers from")
        notes += r.get("problems", [])
        if "error" in r:
            notes.append(f"{r['error']} (log: {r['log']})")
        lines.append(f"- {r['case']}: " + "; ".join(notes))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    every = ",".join(name for name, _ in CASES.items())  # in the order above
    p.add_argument("--cases", default=every, help=f"comma list of cases (default all: {every})")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where the data sets are built (reused)")
    p.add_argument("--runs", type=Path, default=None, help="where the runs go (default ROOT/runs)")
    p.add_argument("--quick", action="store_true", help="tiny sets and --epochs 1: a smoke test")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    try:
        cases = {name: CASES.get(name) for name in names}  # an unknown name is refused before anything runs
    except ValueError as e:
        p.error(str(e))
    runs = args.runs or args.root / "runs"
    args.root.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, case in cases.items():
        print(f"[your-data] {name}: {case.task} ...", file=sys.stderr, flush=True)
        rows.append(run_case(name, case, args.root.resolve(), runs.resolve(), quick=args.quick))
    print(to_markdown(rows, root=args.root, runs=runs, quick=args.quick))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all("error" not in r for r in rows) else 1
