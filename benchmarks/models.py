"""Training throughput of resnet18 with each attention, against plain resnet18 and timm. See attnlab/bench/models.py.

python benchmarks/models.py --attentions se,eca,cbam --rounds 5
"""

import sys

from attnlab.bench.models import main

if __name__ == "__main__":
    sys.exit(main())
