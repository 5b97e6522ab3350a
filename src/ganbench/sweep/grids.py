"""The ``sweep`` config group, read from the top-level ``sweeps/`` folder (package ``ganbench.sweeps``).

Hydra names a config group after its folder under a search-path root, and the grids live beside
``conf/``, not inside it, so they are registered through Hydra's ConfigStore instead: the same
YAML, under group ``sweep``, in the global package their header names.
"""

from __future__ import annotations

from importlib import resources

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

GROUP = "sweep"
GLOBAL_HEADER = "# @package _global_"


def sweep_names() -> list[str]:
    """The ready grids, by name (``smoke``, ``seeds``, ...)."""
    folder = resources.files("ganbench.sweeps")
    return sorted(f.name.removesuffix(".yaml") for f in folder.iterdir() if f.name.endswith(".yaml"))


def register_sweeps() -> None:
    """Store every ``sweeps/<name>.yaml`` in the ConfigStore as ``sweep/<name>`` (idempotent)."""
    store = ConfigStore.instance()
    folder = resources.files("ganbench.sweeps")
    for name in sweep_names():
        text = folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8")
        if not text.lstrip().startswith(GLOBAL_HEADER):
            raise ValueError(f"sweeps/{name}.yaml must start with '{GLOBAL_HEADER}': a grid overrides the whole config")
        store.store(group=GROUP, name=name, node=OmegaConf.create(text), package="_global_", provider="ganbench")
