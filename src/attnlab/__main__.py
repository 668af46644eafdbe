"""``python -m attnlab`` (and so ``torchrun -m attnlab``) runs the CLI."""

import sys

from .cli import main

sys.exit(main())
