"""How a sweep job finds its MLflow parent run: a file the sweep's callback writes into the sweep folder.

A file reaches jobs under every launcher (joblib workers, submitit processes, SLURM nodes).
"""

from __future__ import annotations

import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

PARENT_RUN_FILE = "mlflow_parent_run.json"  # written into the sweep folder by ganbench.sweep.callbacks.MlflowParentRun


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def parent_run_id(sweep_dir: Path) -> str | None:
    """The parent run id this sweep folder's callback wrote, if any."""
    path = Path(sweep_dir) / PARENT_RUN_FILE
    return json.loads(path.read_text())["run_id"] if path.is_file() else None


def sweep_parent_run_id() -> str | None:
    """In a multirun, the MLflow parent run the sweep's callback opened; else None."""
    if not in_multirun():
        return None
    return parent_run_id(Path(HydraConfig.get().sweep.dir))
