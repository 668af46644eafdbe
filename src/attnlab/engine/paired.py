"""The network against each classical baseline on the same test samples, sample by sample.

A task that ``classifies`` gets its test predictions kept in summary.json (``test_predictions``, ``test_targets``,
in test-split order: a class per sample, or with several labels per sample a 0/1 row of its labels), and each
baseline that reports its own ``test_predictions`` a paired test against the network (``summary["paired"][name]``):
McNemar's exact test of right against wrong (with several labels: every label of the sample right), and with
several labels also the approximate-randomization test of the micro-F1 difference (``measure.label_sets``: micro-F1
is not a mean of per-sample rights). ``attnlab compare`` pairs each of its runs with the baselines of its first run
the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..measure.label_sets import micro_f1_randomization
from ..measure.paired import mcnemar_exact
from ..tasks.base import Task, TaskData
from .precision import autocast

__all__ = ["paired_tests", "paired_words", "test_predictions"]


@torch.no_grad()
def test_predictions(
    model: nn.Module, data: TaskData, task: Task, device: torch.device, precision: str | None
) -> tuple[list[int], list[int]]:
    """(predicted class, true class) of every test sample, in order (with several labels: 0/1 rows of each): one
    process, the whole test split."""
    model.eval()
    loader = DataLoader(data.test, task.eval_batch_size, collate_fn=data.collate_fn)
    predicted, targets = [], []
    for batch in loader:
        inputs, target = task.to_device(batch, device)
        with autocast(device, precision):
            output = task.forward_eval(model, inputs)
        predicted += task.predicted_classes(output).tolist()
        targets += target.long().tolist()  # several labels: multi-hot float rows -> 0/1
    return predicted, targets


def paired_tests(predictions: Sequence, targets: Sequence, baselines: dict[str, dict]) -> dict[str, dict]:
    """name -> ``{n, model_only, baseline_only, p}`` (``measure.paired.mcnemar_exact`` of each sample right or
    wrong) for each baseline with ``test_predictions`` of as many samples (of the same test split, in order); with
    several labels per sample (0/1 rows) a sample is right when all its labels are, and ``micro_f1_diff`` and
    ``micro_f1_p`` (network − baseline, ``measure.label_sets.micro_f1_randomization``) are added."""
    truth, model = np.asarray(targets), np.asarray(predictions)
    label_sets = truth.ndim == 2
    out = {}
    for name, scores in baselines.items():
        theirs = scores.get("test_predictions")
        if theirs is None:
            continue
        theirs = np.asarray(theirs)
        if theirs.shape != truth.shape:  # not the same samples: no pairing (a finished run keeps its summary)
            continue
        right = [(x == truth).all(1) if label_sets else x == truth for x in (model, theirs)]
        t = mcnemar_exact(*right)
        out[name] = {"n": t["n"], "model_only": t["first_only"], "baseline_only": t["second_only"], "p": t["p"]}
        if label_sets:
            f1 = micro_f1_randomization(truth, model, theirs)
            out[name].update(micro_f1_diff=f1["diff"], micro_f1_p=f1["p"])
    return out


def paired_words(paired: dict[str, dict], unit: str) -> list[str]:
    """One log line per paired test."""
    lines = []
    for name, t in paired.items():
        line = f"paired test against {name}: "
        if "micro_f1_p" in t:
            line += (
                f"micro-F1 {100 * t['micro_f1_diff']:+.2f} points, approximate randomization p = "
                f"{t['micro_f1_p']:.3g}; every label right: "
            )
        line += (
            f"the network alone right on {t['model_only']} of the {t['n']} test {unit}, "
            f"{name} alone on {t['baseline_only']}; McNemar's exact p = {t['p']:.3g}"
        )
        lines.append(line)
    return lines
