"""Do fitted cutoffs help? For each segmentation run folder given: the cutoffs best on its validation images
(``cutoffs.fit_cutoffs`` without its noise rule) against the defaults, both scored on its test images.

    python benchmarks/segment_cutoffs.py runs/segment-res_attention_unet-nuclei runs/cells …

A check of the rule in ``cutoffs.py``, not a way to choose: the test split is scored for every choice here.
Float32 throughout (a run's own test figure is in its precision).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from attnlab.engine.run_folder import load_run
from attnlab.engine.trainer import build_data
from attnlab.measure.machine import machine
from attnlab.models.tiling import tiled_logits
from attnlab.tasks.segment.cutoffs import DEFAULT_CUTOFFS, fit_cutoffs, score_cutoffs


def probabilities(run, split) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(foreground probability, true instances) of each image of ``split``, the clean condition."""
    o, scheme = run.task.options, run.task.scheme
    maps, truths = [], []
    with torch.no_grad():
        for i in range(len(split)):
            images, labels = split[i]
            logits = tiled_logits(run.model, images[:1], o.tile, o.overlap).float()
            maps.append(scheme.foreground_probability(logits)[0].numpy())
            truths.append(scheme.instances(labels).numpy())
    return maps, truths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="segmentation run folders")
    args = parser.parse_args()
    print(machine())
    print("| run | validation objects | val F1 defaults -> best | best on validation | test F1 defaults | best |")
    print("|---|---:|---|---|---:|---:|")
    for path in args.runs:
        run = load_run(path)
        data = build_data(run.config, run.task)  # the run's own validation carve
        val, test = probabilities(run, data.val), probabilities(run, data.test)

        def at(maps):
            return lambda t: [m > t for m in maps]

        best, record = fit_cutoffs(at(val[0]), val[1])
        best = type(best)(**record["best_on_validation"])
        test_default = score_cutoffs(at(test[0]), test[1], DEFAULT_CUTOFFS)[0]
        test_best = score_cutoffs(at(test[0]), test[1], best)[0]
        shown = f"{best.threshold:g} / {best.min_size} / {best.split_h:g}"
        print(
            f"| {path} | {record['val_objects']} | {record['val_f1_default']:.3f} -> {record['val_f1_fitted']:.3f} "
            f"| {shown} | {test_default:.3f} | {test_best:.3f} |"
        )


if __name__ == "__main__":
    main()
