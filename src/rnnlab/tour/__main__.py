"""``python -m rnnlab.tour`` = ``rnnlab tour`` (an entry point: it may import the CLI)."""

import sys

from rnnlab.cli import main

sys.exit(main(["tour", *sys.argv[1:]]))
