"""Every task with its defaults on user-like folders built from packaged material; see attnlab/bench/your_data.py."""

import sys

from attnlab.bench.your_data import main

if __name__ == "__main__":
    sys.exit(main())
