"""U-Net training throughput against MONAI's U-Nets: `python benchmarks/segment.py` (MONAI from the [bench] extra)."""

import sys

from attnlab.bench.segment import main

if __name__ == "__main__":
    sys.exit(main())
