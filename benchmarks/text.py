"""The text encoder against torch.nn.TransformerEncoderLayer, and the capsule head's cost; see attnlab/bench/text.py."""

import sys

from attnlab.bench.text import main

if __name__ == "__main__":
    sys.exit(main())
