"""Where a default run's time goes, per phase and per op, in float32 and under bfloat16 autocast.

For each task, the pieces of the default run (``attnlab train --task TASK``) are built as the engine builds them:
``build_data``, ``plan_recipe`` (epochs, batch, learning rate), ``build_model``, ``Task.initialize`` and
``prepare_model``, ``build_loaders`` (no workers, the CLI's default) and ``build_optimizer``. The video default
transfers the default image run's backbone; here its frame ResNet (the image default's model, attention and stem)
is built from scratch (``--backbone none``) with the stages the default run holds fixed (``--frozen-stages``): the
same computation, and no other run is needed.

One training step is split into phases, each timed on its own (CPU: every op has finished when it returns):

- data: the next batch of the training loader (its collate and augmentation) and ``task.to_device``;
- forward: ``task.forward_train`` and ``task.loss``;
- backward: ``optimizer.zero_grad`` and ``loss.backward()``;
- optimizer: ``optimizer.step()`` and ``scheduler.step()``;
- metric: the finiteness check, ``loss.item()`` and the training metric's update (the engine does them each step).

The phases tile the step: their sum is its time. Medians over ``--steps`` steps after ``--warmup`` warm-up steps;
then up to ``--val-batches`` validation and test batches (``forward_eval``, ``eval_loss``, metric) and one more
step under ``torch.profiler``: its forward and backward ops by self CPU time (the op-level explanation).

bf16: the same steps on a copy of the model from the same initial weights, over the same batches, with
``torch.autocast("cpu", dtype=torch.bfloat16)`` around forward and loss (the engine's ``--precision bf16``), the
same around evaluation. The precisions are timed in rounds of one step each, their order alternating, so a drift
in the machine's speed touches both alike. The first step's loss is compared with float32's (relative
difference): same weights, same batch, same dropout masks.

The estimate of a default run: data set and model built once, then ``epochs × (steps per epoch × step time +
validation batches × time per validation batch)`` and the test split once; baselines, checkpoints and curves are
left out.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..data.seeded import epoch_seed
from ..engine.config import TrainConfig
from ..engine.distributed import DistContext
from ..engine.loop import NonFiniteLoss, set_bn_eval
from ..engine.plan import Plan, plan_recipe
from ..engine.precision import autocast
from ..engine.trainer import Loaders, build_data, build_loaders, build_model, build_optimizer, seed_everything
from ..measure.machine import cpu_flags, machine
from ..tasks import Task, TaskData, list_tasks
from ..tasks.video.task import VideoOptions
from ..tasks.video.transfer import DEFAULT_BACKBONE, BackboneRun, frame_architecture, frozen_stages

__all__ = [
    "PHASES",
    "PRECISIONS",
    "Setup",
    "Trainer",
    "build_setup",
    "cpu_facts",
    "main",
    "profile_task",
    "to_markdown",
]

PHASES = ("data", "forward", "backward", "optimizer", "metric")
PRECISIONS = ("fp32", "bf16")
DEFAULT_TASKS = ("classify", "segment", "text", "video")
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def _video_from_scratch() -> tuple[TrainConfig, str]:
    image = TrainConfig.create("classify")  # the default image run: its ResNet is the frame backbone
    run = BackboneRun(DEFAULT_BACKBONE, image.to_dict(), runs=None)  # as the default video run reads it
    video = VideoOptions()  # the video default's options, whose rule says which stages its run holds fixed
    stages = frozen_stages(video, frame_architecture(video, run), run)
    o = image.options
    flags = f"--backbone none --frame-model {o.model} --attention {o.attention} --frozen-stages {stages}"
    config = TrainConfig.create(
        "video", backbone="none", frame_model=o.model, attention=o.attention or "none", frozen_stages=stages
    )
    note = (
        f"Profiled with {flags}: the default run's frame ResNet from scratch, with the stages that run holds fixed "
        "(the same computation; no image run needed)"
    )
    return config, note


def _text_from_scratch() -> tuple[TrainConfig, str]:
    note = (
        "Profiled with --backbone none: the default run's encoder from scratch (the same computation as from the "
        "encoder pretrained first; no pretraining run needed)"
    )
    return TrainConfig.create("text", backbone="none"), note


# the configs that differ from TrainConfig.create(task): task -> () -> (config, why)
DEFAULT_CONFIGS = {"text": _text_from_scratch, "video": _video_from_scratch}


def default_config(name: str) -> tuple[TrainConfig, str]:
    """The default run's config of task ``name`` (as profiled), and a line saying how it differs, if it does."""
    make = DEFAULT_CONFIGS.get(name)
    return make() if make else (TrainConfig.create(name), "")


@dataclass
class Setup:
    """A default run's pieces, built as the engine builds them; ``initial``: the weights every precision starts
    from."""

    name: str
    task: Task
    data: TaskData
    plan: Plan
    model: nn.Module
    loaders: Loaders
    initial: dict[str, Tensor]
    build_seconds: float  # data, plan, model and loaders
    note: str


def build_setup(name: str, device: torch.device) -> Setup:
    start = time.perf_counter()
    config, note = default_config(name)
    task = config.new_task()
    task.check_names()
    data = build_data(config, task)
    plan = plan_recipe(config.recipe, len(data.train), task.unit, task.sample_size())
    model = build_model(config, task)
    task.initialize(model)
    model = task.prepare_model(model, device)
    loaders = build_loaders(data, plan.recipe, task, DistContext(device=device), workers=0)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return Setup(name, task, data, plan, model, loaders, initial, time.perf_counter() - start, note)


def _autocast(precision: str):
    return autocast(torch.device("cpu"), precision)  # the engine's own: --precision bf16 on CPU


def _batches(loader: DataLoader) -> Iterator:
    """The loader's batches without end (a new pass when one ends: its start counts as data time)."""
    while True:
        yield from loader


class Trainer:
    """One precision's training: its own copy of the model at the initial weights, optimizer, scheduler, metric and
    pass over the loader (every copy sees the same batches: the shuffle and augmentation are seeded)."""

    def __init__(self, s: Setup, precision: str, model: nn.Module, device: torch.device) -> None:
        self.s, self.precision, self.model, self.device = s, precision, model, device
        model.load_state_dict(s.initial)
        model.train()
        if s.plan.recipe.freeze_bn:
            set_bn_eval(model)
        self.optimizer, self.scheduler = build_optimizer(s.plan.recipe, s.task, model, len(s.loaders.train))
        self.metric = s.task.metric(training=True)
        self.batches = _batches(s.loaders.train)

    def step(self) -> tuple[list[float], int, float]:
        """One training step as the engine's loop makes it: (seconds of each of PHASES, samples, loss)."""
        task, model = self.s.task, self.model
        t0 = time.perf_counter()
        inputs, target = task.to_device(next(self.batches), self.device)
        t1 = time.perf_counter()
        with _autocast(self.precision):
            output = task.forward_train(model, inputs)
            loss = task.loss(output, target)
        t2 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        self.optimizer.step()
        self.scheduler.step()
        t4 = time.perf_counter()
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"{self.s.name} ({self.precision}): the training loss is {loss.item()}")
        value = loss.item()
        self.metric.update(output, target, loss)
        t5 = time.perf_counter()
        return [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4], inputs[0].shape[0], value


def trainers(s: Setup, precisions: Sequence[str], device: torch.device) -> dict[str, Trainer]:
    """A trainer per precision, the first on the engine's model, the others on copies of it."""
    s.loaders.sampler.set_epoch(0)  # the first epoch's shuffle and augmentation
    s.data.train.set_epoch(0)
    return {p: Trainer(s, p, s.model if i == 0 else copy.deepcopy(s.model), device) for i, p in enumerate(precisions)}


def time_steps(runs: dict[str, Trainer], steps: int, warmup: int, seed: int) -> dict[str, dict]:
    """Per precision: seconds of each phase of ``steps`` training steps after ``warmup`` ones, in rounds of one
    step each (the order alternating), and the first step's loss (the same RNG state for every precision)."""
    out = {p: {"phases": {ph: [] for ph in PHASES}, "samples": 0, "first_loss": None} for p in runs}
    for i in range(warmup + steps):
        for p in list(runs)[:: 1 if i % 2 == 0 else -1]:
            if i == 0:
                seed_everything(epoch_seed(seed, 0))  # the same dropout masks in the first step
            phases, n, loss = runs[p].step()
            r = out[p]
            r["first_loss"] = loss if r["first_loss"] is None else r["first_loss"]
            if i >= warmup:
                for ph, seconds in zip(PHASES, phases, strict=True):
                    r["phases"][ph].append(seconds)
                r["samples"] += n
    return out


@torch.no_grad()
def time_eval(s: Setup, runs: dict[str, Trainer], loader: DataLoader, batches: int) -> dict[str, list[float]]:
    """Per precision, seconds of each of the first ``batches`` batches of an evaluation pass: the batch (read once
    for all), ``forward_eval``, ``eval_loss`` and the metric's update."""
    times: dict[str, list[float]] = {p: [] for p in runs}
    metrics = {p: s.task.metric(training=False) for p in runs}
    for r in runs.values():
        r.model.eval()
    device = next(iter(runs.values())).device
    it = iter(loader)
    for _ in range(min(batches, len(loader))):
        t0 = time.perf_counter()
        inputs, target = s.task.to_device(next(it), device)
        read = time.perf_counter() - t0
        for p, r in runs.items():
            t0 = time.perf_counter()
            with _autocast(p):
                output = s.task.forward_eval(r.model, inputs)
                loss = s.task.eval_loss(output, target)
            metrics[p].update(output, target, loss)
            times[p].append(read + time.perf_counter() - t0)
    for r in runs.values():
        r.model.train()
        if s.plan.recipe.freeze_bn:
            set_bn_eval(r.model)
    return times


def top_ops(r: Trainer, count: int) -> dict:
    """The ``count`` ops of one training forward and backward with the most self CPU time (ms, share, calls), and
    the self CPU time of all its ops (ms; the profiler's own overhead makes it exceed an unprofiled step)."""
    from torch.profiler import ProfilerActivity, profile

    task = r.s.task
    inputs, target = task.to_device(next(r.batches), r.device)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with _autocast(r.precision):
            loss = task.loss(task.forward_train(r.model, inputs), target)
        loss.backward()
    r.model.zero_grad(set_to_none=True)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    top = [
        {"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total, "calls": e.count}
        for e in events[:count]
    ]
    return {"total_ms": total / 1e3, "ops": top}


def _ms(xs: Sequence[float]) -> float:
    return 1e3 * statistics.median(xs) if xs else 0.0


def profile_task(
    s: Setup, precisions: Sequence[str], *, steps: int, warmup: int, eval_batches: int, ops: int, device: torch.device
) -> dict[str, dict]:
    """One task, per precision: ms per phase (medians), step, samples/s, evaluation ms per batch, top ops and the
    estimate of the default run."""
    runs = trainers(s, precisions, device)
    trained = time_steps(runs, steps, warmup, s.plan.recipe.seed)
    val = time_eval(s, runs, s.loaders.val, eval_batches)
    test = time_eval(s, runs, s.loaders.test, eval_batches)
    recipe, per_epoch = s.plan.recipe, len(s.loaders.train)
    results = {}
    for p, t in trained.items():
        step_seconds = [sum(parts) for parts in zip(*t["phases"].values(), strict=True)]
        step_ms, val_ms, test_ms = _ms(step_seconds), _ms(val[p]), _ms(test[p])
        train_s = recipe.epochs * per_epoch * step_ms / 1e3
        val_s = recipe.epochs * len(s.loaders.val) * val_ms / 1e3
        test_s = len(s.loaders.test) * test_ms / 1e3
        results[p] = {
            "ms": {ph: _ms(v) for ph, v in t["phases"].items()},
            "step_ms": step_ms,
            "samples_s": t["samples"] / sum(step_seconds),
            "first_loss": t["first_loss"],
            "val_ms_per_batch": val_ms,
            "test_ms_per_batch": test_ms,
            "top_ops": top_ops(runs[p], ops) if ops else {"total_ms": None, "ops": []},
            "estimate_s": {
                "build": s.build_seconds,
                "train": train_s,
                "val": val_s,
                "test": test_s,
                "total": s.build_seconds + train_s + val_s + test_s,
            },
        }
    return results


def cpu_facts() -> dict:
    """The CPU and what decides its speed here: ISA flags, torch's threads, oneDNN and its bf16 support."""
    flags = cpu_flags()
    bf16 = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return {
        "machine": machine(),
        "flags": {f: f in flags for f in CPU_FLAGS},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "onednn": torch.backends.mkldnn.is_available(),
        "onednn_bf16": bool(bf16()) if bf16 is not None else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "" if x is None else format(x, spec)


def to_markdown(results: dict) -> str:
    """The phase table (one row per task and precision) and each task's top ops."""
    head = ["task", "precision", "batch", *PHASES, "step", "samples/s", "val ms/batch", "run s (est.)"]
    lines = [
        "| " + " | ".join([*head, "bf16 speed-up", "bf16 loss rel. diff"]) + " |",
        "|---|---|" + "---:|" * len(head),
    ]
    for name, task in results["tasks"].items():
        fp32 = task["precisions"].get("fp32")
        for precision, r in task["precisions"].items():
            speedup = diff = None
            if precision == "bf16" and fp32 is not None:
                speedup = fp32["step_ms"] / r["step_ms"]
                diff = abs(r["first_loss"] - fp32["first_loss"]) / max(abs(fp32["first_loss"]), 1e-12)
            cells = [
                name,
                precision,
                str(task["plan"]["batch_size"]),
                *(_fmt(r["ms"][p]) for p in PHASES),
                _fmt(r["step_ms"]),
                _fmt(r["samples_s"], ".0f"),
                _fmt(r["val_ms_per_batch"]),
                _fmt(r["estimate_s"]["total"], ".0f"),
                "" if speedup is None else f"{speedup:.2f}×",
                _fmt(diff, ".2e"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    for name, task in results["tasks"].items():
        for precision, r in task["precisions"].items():
            top = r["top_ops"]
            if top["ops"]:
                title = f"{name}, {precision}: top ops of one forward + backward by self CPU time"
                lines += ["", f"{title} (all ops: {top['total_ms']:.0f} ms under the profiler)", ""]
                lines += ["| op | self ms | share | calls |", "|---|---:|---:|---:|"]
                lines += [
                    f"| `{o['op']}` | {o['self_ms']:.1f} | {100 * o['share']:.0f} % | {o['calls']} |"
                    for o in top["ops"]
                ]
    return "\n".join(lines)


def _names(value: str, known: Sequence[str], flag: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{flag}: expected names from {list(known)}, got {value!r}")
    return list(dict.fromkeys(names))  # each once, in the order given


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {value}")
    return n


def run(
    tasks: Sequence[str], precisions: Sequence[str], *, steps: int, warmup: int, eval_batches: int, ops: int
) -> dict:
    """Every figure of every task and precision (what ``--json`` writes), with the CPU's facts."""
    device = torch.device("cpu")
    kw = {"steps": steps, "warmup": warmup, "eval_batches": eval_batches, "ops": ops}
    results: dict = {"cpu": cpu_facts(), "settings": kw, "tasks": {}}
    for name in tasks:
        s = build_setup(name, device)
        results["tasks"][name] = {
            "plan": {**s.plan.to_dict(), "steps_per_epoch": len(s.loaders.train)},
            "note": s.note,
            "splits": {"train": len(s.data.train), "val": len(s.data.val), "test": len(s.data.test)},
            "precisions": profile_task(s, precisions, device=device, **kw),
        }
    return results


def _header(results: dict) -> str:
    c, st = results["cpu"], results["settings"]
    flags = ", ".join(f"{f} {'yes' if on else 'no'}" for f, on in c["flags"].items())
    lines = [
        f"{c['machine']}; flags: {flags}; torch {c['torch']}, {c['threads']} threads, oneDNN "
        f"{'yes' if c['onednn'] else 'no'} (bf16 {'yes' if c['onednn_bf16'] else 'no'}), "
        f"ATen CPU capability {c['cpu_capability']}.",
        f"Median ms of {st['steps']} training steps after {st['warmup']} warm-up steps, per phase (they sum to the "
        f"step), the precisions interleaved step by step; up to {st['eval_batches']} validation batches. Run s "
        "(est.): build + epochs × (steps × step + validation) + test once; in a bf16 row, the run under CPU autocast "
        "(``--precision bf16``; ``auto`` picks it for segment and video on CPUs with bf16). `attnlab bench profile`.",
    ]
    for name, t in results["tasks"].items():
        p = t["plan"]
        lines.append(
            f"- {name}: {t['splits']['train']} training samples, {p['epochs']} epochs of {p['steps_per_epoch']} "
            f"steps at batch {p['batch_size']}. {t['note']}".rstrip()
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=lambda v: _names(v, list_tasks(), "--tasks"), default=list(DEFAULT_TASKS))
    p.add_argument("--precision", type=lambda v: _names(v, PRECISIONS, "--precision"), default=list(PRECISIONS))
    p.add_argument("--steps", type=_positive, default=10, help="timed training steps per task and precision")
    p.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    p.add_argument("--val-batches", type=_positive, default=3, help="validation (and test) batches timed")
    p.add_argument("--top", type=int, default=5, help="ops listed per task and precision (0: no profiler)")
    p.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    args = p.parse_args(argv)
    if args.warmup < 0 or args.top < 0:
        p.error("--warmup and --top: expected ints >= 0")
    results = run(
        args.tasks, args.precision, steps=args.steps, warmup=args.warmup, eval_batches=args.val_batches, ops=args.top
    )
    print(_header(results) + "\n")
    print(to_markdown(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0
