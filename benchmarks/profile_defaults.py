"""Where each default run's time goes (phases, top ops), float32 against bf16 autocast; see attnlab/bench/profile.py.

(Not ``profile.py``: run as a script, that name would shadow the standard library's ``profile``, which torch's
cProfile imports.)"""

import sys

from attnlab.bench.profile import main

if __name__ == "__main__":
    sys.exit(main())
