"""Temporal modules: non-local against pytorchvideo, and their cost in a clip backbone: `python benchmarks/video.py`
(pytorchvideo from the [bench] extra)."""

import sys

from attnlab.bench.video import main

if __name__ == "__main__":
    sys.exit(main())
