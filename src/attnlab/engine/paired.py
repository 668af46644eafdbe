"""The network against each classical baseline on the same test samples, sample by sample.

A task that ``classifies`` gets its test predictions kept in summary.json (``test_predictions``, ``test_targets``,
in test-split order), and each baseline that reports its own ``test_predictions`` a McNemar exact test against
the network (``summary["paired"][name]``). ``attnlab compare`` pairs each of its runs with the baselines of its
first run the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..measure.paired import mcnemar_exact
from ..tasks.base import Task, TaskData
from .precision import autocast

__all__ = ["paired_tests", "paired_words", "test_predictions"]


@torch.no_grad()
def test_predictions(
    model: nn.Module, data: TaskData, task: Task, device: torch.device, precision: str | None
) -> tuple[list[int], list[int]]:
    """(predicted class, true class) of every test sample, in order: one process, the whole test split."""
    model.eval()
    loader = DataLoader(data.test, task.eval_batch_size, collate_fn=data.collate_fn)
    predicted, targets = [], []
    for batch in loader:
        inputs, target = task.to_device(batch, device)
        with autocast(device, precision):
            output = task.forward_eval(model, inputs)
        predicted += task.predicted_classes(output).tolist()
        targets += target.tolist()
    return predicted, targets


def paired_tests(predictions: Sequence[int], targets: Sequence[int], baselines: dict[str, dict]) -> dict[str, dict]:
    """name -> ``{n, model_only, baseline_only, p}`` (``measure.paired.mcnemar_exact``) for each baseline with
    ``test_predictions`` of as many samples (of the same test split, in order)."""
    truth = np.asarray(targets)
    model = np.asarray(predictions) == truth
    out = {}
    for name, scores in baselines.items():
        theirs = scores.get("test_predictions")
        if theirs is None:
            continue
        if len(theirs) != len(truth):  # not the same samples: no pairing (a finished run keeps its summary)
            continue
        t = mcnemar_exact(model, np.asarray(theirs) == truth)
        out[name] = {"n": t["n"], "model_only": t["first_only"], "baseline_only": t["second_only"], "p": t["p"]}
    return out


def paired_words(paired: dict[str, dict], unit: str) -> list[str]:
    """One log line per paired test."""
    return [
        f"paired test against {name}: the network alone right on {t['model_only']} of the {t['n']} test {unit}, "
        f"{name} alone on {t['baseline_only']}; McNemar's exact p = {t['p']:.3g}"
        for name, t in paired.items()
    ]
