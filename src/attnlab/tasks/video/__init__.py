"""Video classification: a frame ResNet transferred from an image run, attention over the frames."""

from .data import VIDEO_DATA, ClipArrays
from .task import Video, VideoCLI, VideoOptions
from .transfer import DEFAULT_BACKBONE

__all__ = ["DEFAULT_BACKBONE", "VIDEO_DATA", "ClipArrays", "Video", "VideoCLI", "VideoOptions"]
