"""``python -m rnnlab.tour``."""

from . import main

raise SystemExit(main())
