"""``python -m pse_processors``: see :mod:`pse_processors.cli`."""

import sys

from .cli import main

sys.exit(main())
