"""``python -m ganbench.report``."""

import sys

from ganbench.report.cli import main

sys.exit(main())
