"""``python -m rnnlab`` (and ``torchrun -m rnnlab``): the command line of :mod:`rnnlab.cli`."""

import sys

from rnnlab.cli import main

sys.exit(main())
