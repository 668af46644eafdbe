"""Image classification: ResNets with attention (the default task)."""

from .data import CLASSIFY_DATA
from .task import Classify, ClassifyCLI, ClassifyOptions

__all__ = ["CLASSIFY_DATA", "Classify", "ClassifyCLI", "ClassifyOptions"]
