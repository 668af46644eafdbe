"""Benchmark of the trainer: attnlab's training epoch against a bare PyTorch loop, same model, data, batch.

"trainer" is ``engine.loop.train_one_epoch`` over the loader ``attnlab train`` builds (per-sample seeded
augmentation, distributed sampler, channels_last, metrics); "bare" is the textbook loop over a plain
shuffled DataLoader of the same data set. Epochs of the two alternate (interleaved); images/s and ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..engine.config import TrainConfig
from ..engine.distributed import DistContext
from ..engine.loop import train_one_epoch
from ..engine.plan import plan_recipe
from ..engine.trainer import build_data, build_loaders, build_model, build_optimizer
from ..measure.machine import machine


def bare_epoch(model, loader, optimizer) -> None:
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def run(config: TrainConfig, rounds: int) -> dict:
    task = config.new_task()
    data = build_data(config, task)
    ctx = DistContext()
    model = task.prepare_model(build_model(config, task), ctx.device)
    recipe = plan_recipe(config.recipe, len(data.train)).recipe
    loaders = build_loaders(data, recipe, task, ctx, workers=0)
    loader, sampler = loaders.train, loaders.sampler
    optimizer, scheduler = build_optimizer(recipe, task, model, len(loader))
    bare_model = build_model(config, task)
    bare_opt = torch.optim.SGD(bare_model.parameters(), lr=recipe.lr, momentum=0.9, nesterov=True)
    bare_loader = DataLoader(data.train.dataset, recipe.batch_size, shuffle=True)  # without the seeding wrapper
    n = len(data.train)
    times: dict[str, list[float]] = {"trainer": [], "bare": []}
    for r in range(rounds + 1):  # round 0 warms up
        order = ("trainer", "bare") if r % 2 else ("bare", "trainer")
        for name in order:
            start = time.perf_counter()
            if name == "trainer":
                sampler.set_epoch(r)
                data.train.set_epoch(r)
                train_one_epoch(model, loader, optimizer, scheduler, ctx, task)
            else:
                bare_epoch(bare_model, bare_loader, bare_opt)
            if r:
                times[name].append(time.perf_counter() - start)
    t, b = statistics.median(times["trainer"]), statistics.median(times["bare"])
    return {"images": n, "trainer_img_s": n / t, "bare_img_s": n / b, "ratio": b / t}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attention", default="cbam")
    p.add_argument("--data", default="mnist5k")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-limit", type=int, default=2048)
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args(argv)
    config = TrainConfig.create(
        "classify", attention=args.attention, data=args.data, batch_size=args.batch_size, train_limit=args.train_limit
    )
    r = run(config, args.rounds)
    print(
        f"resnet18 + {args.attention} on {args.data} ({r['images']} images, batch {args.batch_size}), "
        f"{machine()}; median of "
        f"{args.rounds} interleaved epochs each. `python benchmarks/train.py`.\n"
    )
    print("| loop | images/s | trainer / bare |\n|---|---:|---:|")
    print(f"| bare PyTorch | {r['bare_img_s']:.1f} | |")
    print(f"| attnlab trainer | {r['trainer_img_s']:.1f} | {r['ratio']:.3f} |")
    return 0
