"""Forward + backward latency of every attention module, against identity and timm. See attnlab/bench/modules.py.

pip install -e ".[bench]"               # timm, for the comparison
python benchmarks/modules.py --doc docs/zoo.md
"""

import sys

from attnlab.bench.modules import main

if __name__ == "__main__":
    sys.exit(main())
