"""ganbench's Hydra configs (installed as the package ``ganbench.conf``; see pyproject.toml).

One group per axis of the grid (``model/``, ``loss/``, ``stabilize/``, ``dataset/``, ``noise/``), ``eval/``,
and ``experiment/`` presets. The ready grids of the ``sweep`` group live in the project's top-level
``sweeps/`` folder (package ``ganbench.sweeps``); importing this package registers them, so
``sweep=smoke`` resolves wherever the configs are read from.
"""

from ganbench.sweep.grids import register_sweeps

register_sweeps()
