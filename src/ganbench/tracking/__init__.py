"""MLflow as the record: stores (``store``), runs (``runs``) and the record's layout (``layout``)."""

from ganbench.tracking.lease import Heartbeat, reap_dead_runs
from ganbench.tracking.runs import RunLogger, flatten, git_state, grid_tags, mlflow_run, to_container
from ganbench.tracking.store import (
    TrackingError,
    check_reachable,
    child_runs,
    experiment_id,
    is_duplicate_key,
    keep_earliest,
    live_runs,
    make_client,
    search_all,
    sqlite_path,
    store_lock,
)

__all__ = [
    "Heartbeat",
    "reap_dead_runs",
    "RunLogger",
    "TrackingError",
    "check_reachable",
    "child_runs",
    "experiment_id",
    "is_duplicate_key",
    "keep_earliest",
    "live_runs",
    "flatten",
    "git_state",
    "grid_tags",
    "make_client",
    "mlflow_run",
    "search_all",
    "sqlite_path",
    "store_lock",
    "to_container",
]
