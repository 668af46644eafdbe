"""Tables, plots and maps made from results. Plots use matplotlib's Figure directly (no pyplot state, headless)."""

from .plots import plot_scaling

__all__ = ["plot_scaling"]
