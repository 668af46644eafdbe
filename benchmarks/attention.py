"""Time and peak memory of the formula: naive, attnlab math / auto, torch SDPA. See attnlab/bench/attention.py.

python benchmarks/attention.py                          # CPU, float32, N = 256, 1024, 4096
python benchmarks/attention.py --dtype bfloat16 --sizes 1024,4096,16384   # on a GPU
"""

import sys

from attnlab.bench.attention import main

if __name__ == "__main__":
    sys.exit(main())
