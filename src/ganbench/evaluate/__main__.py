"""``python -m ganbench.evaluate run_id=<id> | experiment=<name> [overrides]``: re-score logged runs."""

import sys

from ganbench.evaluate.rescore import main

sys.exit(main())
