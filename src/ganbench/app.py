"""The Hydra app: ``python -m ganbench [overrides]`` trains one configuration, ``-m`` sweeps a grid."""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from ganbench import validate
from ganbench.data import DataError, load_dataset
from ganbench.runner import check_data_fits, record_run_inputs, resolve_device, run_name, train_run
from ganbench.stabilize import stabilize_tag
from ganbench.tracking import grid_tags, make_client, mlflow_run

log = logging.getLogger("ganbench")

USER_ERRORS = (validate.ConfigError, DataError)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Validate, load the data, then train and record one run. Raises ConfigError/DataError before any run exists."""
    validate.check(cfg)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    device = resolve_device(cfg.device)
    data = load_dataset(
        cfg.dataset.name,
        split="train",
        image_size=cfg.dataset.image_size,
        root=cfg.data.root,
        limit=cfg.data.limit,
        download=cfg.dataset.download,
    )
    check_data_fits(cfg, data.images.size(0))

    client = make_client(cfg.tracking.uri)
    tags = grid_tags(cfg, stabilize_tag(cfg.stabilize))
    with mlflow_run(client, cfg.tracking.experiment, run_name(cfg), tags) as logger:
        record_run_inputs(cfg, data, logger)
        result = train_run(cfg, data, logger, device)
        log.info("run %s finished: %d steps in %.1f s", logger.run_id, result["steps"], result["seconds"])
    return {"run_id": logger.run_id, **{k: v for k, v in result.items() if k in ("steps", "epochs", "seconds")}}


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, Any] | None:
    """Entry point of ``python -m ganbench`` and the ``ganbench`` command."""
    try:
        return run(cfg)
    except USER_ERRORS as exc:
        # One clear line per problem, no traceback: the user fixes the command, not the code.
        for line in str(exc).splitlines():
            print(f"ganbench: error: {line}", file=sys.stderr)
        sys.exit(2)
