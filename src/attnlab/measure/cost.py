"""Parameters and FLOPs of a module, the latter counted by ``torch.utils.flop_counter``.

FLOPs are those of matrix products and convolutions, 2 per multiply-add, as ``FlopCounterMode`` counts
them; elementwise work (activations, pooling, normalization) is not counted. Attention is counted
through torch's math decomposition, since the counter has no formula for the CPU flash kernel.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_params", "count_flops"]


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass in eval mode (the module's training flag is restored)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            module(*inputs)
    finally:
        module.train(was_training)
    return counter.get_total_flops()
