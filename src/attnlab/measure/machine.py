"""The machine a figure was measured on, in one phrase: every benchmark table names it."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

__all__ = ["cpu_flags", "cpu_name", "machine"]


def cpu_name() -> str:
    """The processor's model name ("AMD EPYC 9454 48-Core Processor"; /proc/cpuinfo on Linux), else its
    architecture ("x86_64")."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The processor's feature flags (``avx512_bf16``, ``amx_bf16``, …; /proc/cpuinfo on Linux, else none)."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            if line.lower().startswith("flags") and ":" in line:
                return set(line.split(":", 1)[1].split())
    return set()


def machine(device: torch.device | str = "cpu") -> str:
    """``CPU (AMD EPYC …, 2 threads, torch 2.14.1)`` or ``CUDA (NVIDIA H200, torch …)``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)}, torch {torch.__version__})"
    return f"CPU ({cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__})"
