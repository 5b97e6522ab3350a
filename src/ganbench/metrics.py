"""The metrics' first address (issue #4: ``ganbench.metrics.frechet_distance``), kept for code written against it.
The maths lives in :mod:`ganbench.evaluate.metrics` since the evaluation stage became a package; this module only
re-exports its public names."""

from ganbench.evaluate.metrics import *  # noqa: F403 (the re-export is the point)
from ganbench.evaluate.metrics import __all__  # noqa: F401
