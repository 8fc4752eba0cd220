"""``python -m aiotutorial.pgcluster``: see :mod:`aiotutorial.pgcluster.cli`."""

import sys

from .cli import main

sys.exit(main())
