"""The trainer's images/s against a bare PyTorch loop, interleaved. See attnlab/bench/train.py.

python benchmarks/train.py
"""

import sys

from attnlab.bench.train import main

if __name__ == "__main__":
    sys.exit(main())
