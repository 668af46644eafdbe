"""Measurement below engine, report and bench: parameters and FLOPs, interleaved timing and paired ratios."""

from .cost import count_flops, count_params

__all__ = ["count_flops", "count_params"]
