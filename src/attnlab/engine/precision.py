"""The arithmetic a run trains and evaluates in: ``--precision auto|fp32|bf16``, a recipe field (it changes the
result), resolved once per run and recorded in its plan.

``bf16`` is autocast to bfloat16 around the forward pass and the loss (weights, gradients and the optimizer stay
float32). ``auto`` is bf16 on CUDA, and on a CPU with bfloat16 instructions (AVX-512 BF16, AMX) for the tasks
whose convolutions it speeds up (``Task.cpu_bf16``); float32 elsewhere. Measured with ``attnlab bench profile``
on an AMD EPYC (AVX-512 BF16, no AMX), torch 2.14.1, 2 cores, training step against float32: segment 1.73×,
video 1.36×, classify 1.24×, text 0.64× (its small matrix products lose to the casts), first-step losses within
5e-4 (text 2e-3); on an Intel Xeon with AMX: segment 2.03×, video 1.22×, classify 1.12×, text 0.51×.
Classify stays float32 under ``auto``: bf16 cost the default run 0.6 points for 7 % of its time.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from ..measure.machine import cpu_flags

__all__ = ["PRECISIONS", "autocast", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_precision(choice: str, device: torch.device, cpu_bf16: bool) -> tuple[str, str]:
    """("fp32" | "bf16", why) for ``--precision choice`` on ``device``; ``cpu_bf16``: the task gains from it."""
    if choice != "auto":
        return choice, "--precision"
    if device.type == "cuda":
        return "bf16", "auto: CUDA"
    if device.type != "cpu":
        return "fp32", f"auto: {device.type}"
    flags = sorted(set(BF16_FLAGS) & cpu_flags())
    if not flags:
        return "fp32", "auto: this CPU has no bfloat16 instructions"
    if not cpu_bf16:
        return "fp32", f"auto: this task is slower under bf16 on CPU (despite {', '.join(flags)})"
    return "bf16", f"auto: {', '.join(flags)} on this CPU"


def autocast(device: torch.device, precision: str | None):
    """The context a forward pass runs in; ``None`` (a caller without a run): bf16 on CUDA, else float32."""
    if precision is None:
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16" and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()
