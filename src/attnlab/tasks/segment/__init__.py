"""Cell segmentation: U-Nets with residual blocks and attention gates, one class or several, with instance
metrics and a classical baseline (Otsu)."""

from .data import SEGMENT_DATA
from .labels import LabelScheme, label_scheme
from .task import Segment, SegmentCLI, SegmentOptions

__all__ = ["SEGMENT_DATA", "LabelScheme", "Segment", "SegmentCLI", "SegmentOptions", "label_scheme"]
