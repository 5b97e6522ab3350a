"""What a training run records in MLflow besides its per-step metrics: inputs, environment, final artifacts."""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import hydra
import mlflow
import numpy
import torch
import torchvision
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from ganbench import __version__
from ganbench.plotting import animate, loss_curves
from ganbench.stabilize import stabilize_tag
from ganbench.tracking import RunLogger, flatten, layout, to_container
from ganbench.train.checkpoint import save_checkpoint


def environment() -> dict[str, str]:
    """Package versions and platform: what repeating the run needs besides config and data."""
    return {
        "env.ganbench": __version__,
        "env.python": platform.python_version(),
        "env.torch": torch.__version__,
        "env.torchvision": torchvision.__version__,
        "env.numpy": numpy.__version__,
        "env.mlflow": mlflow.__version__,
        "env.hydra": hydra.__version__,
        "env.platform": platform.platform(),
    }


def record_run_inputs(cfg: DictConfig, data: Any, logger: RunLogger) -> None:
    """Params, the resolved config and the environment: what repeating this run needs."""
    params = flatten(to_container(cfg))
    params.update({f"data.{k}": v for k, v in data.params().items()})
    params.update(environment())
    params["stabilize.tricks"] = stabilize_tag(to_container(cfg.stabilize))
    logger.log_params(params)
    logger.log_text(OmegaConf.to_yaml(cfg, resolve=True), layout.CONFIG_ARTIFACT)
    # Full paths and sha256 of every data file read (params carry a short form).
    logger.log_text(json.dumps(data.files, indent=1), layout.DATA_FILES_ARTIFACT)
    logger.set_tags({layout.COMMAND_TAG: " ".join(sys.argv)[:5000]})


def record_final(logger: RunLogger, history: dict[str, list[float]], steps: list[int], frames: list[Image.Image],
                 title: str, final_checkpoint: dict[str, Any]) -> None:
    """Loss curves, the training animation and the final checkpoint (``checkpoints/final.pt``)."""
    if steps:
        logger.log_figure(loss_curves(history, steps, title), layout.LOSS_CURVES_ARTIFACT)
    with tempfile.TemporaryDirectory() as tmp:
        if frames:
            gif = Path(tmp) / layout.ANIMATION_FILE
            gif.write_bytes(animate(frames))
            logger.log_artifact(gif, layout.SAMPLES_DIR)
        path = save_checkpoint(Path(tmp) / layout.CHECKPOINT_FILE, final_checkpoint)
        logger.log_artifact(path, layout.CHECKPOINT_DIR)
    logger.flush()
