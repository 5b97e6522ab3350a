"""What a training run records in MLflow besides its per-step metrics: inputs, environment, final artifacts."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import hydra
import mlflow
import mlflow.pytorch
import numpy
import torch
import torchvision
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import nn

from ganbench import __version__
from ganbench.plotting import animate, loss_curves
from ganbench.stabilize import stabilize_tag
from ganbench.tracking import RunLogger, flatten, is_duplicate_key, layout, to_container
from ganbench.tracking.runs import writing
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


def dataset_input(data: Any, context: str = "train") -> DatasetInput:
    """The training split as an MLflow dataset input: name, split, a digest of its files and preprocessing, source."""
    files = sorted(data.files, key=lambda f: f["path"])
    fields = {"files": [f["sha256"] for f in files], "image_size": data.image_size, "n": len(data)}
    if getattr(data, "preprocess", "mnist") != "mnist":  # the default's digest stays what it was
        fields["preprocess"] = data.preprocess
    blob = json.dumps(fields, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    source = json.dumps({"uri": Path(files[0]["path"]).parent.as_uri() if files else "", "files": [f["path"] for f in files]})
    profile = json.dumps({"num_images": len(data), "num_classes": data.num_classes, "image_size": data.image_size, "note": data.note})
    schema = json.dumps({"images": f"uint8[{data.image_size}x{data.image_size}]", "labels": f"int64 in [0, {data.num_classes})"})
    dataset = Dataset(name=f"{data.name}-{data.split}", digest=digest, source_type="local", source=source, schema=schema, profile=profile)
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])


def record_dataset(logger: RunLogger, data: Any) -> None:
    """Log the training data as the run's dataset input (the MLflow UI's Dataset column, filterable)."""
    datasets = [dataset_input(data)]
    with writing(logger.client, logger.run_id, "the run's dataset input"):
        try:
            logger.client.log_inputs(logger.run_id, datasets=datasets)
        except MlflowException as exc:
            # MLflow's store looks the dataset up, then inserts it if it was not there: the parallel jobs of a sweep
            # logging the same new dataset at once race, and the loser's insert breaks the store's unique key
            # (experiment, name, digest). The winner's row is there now, so logging again links it.
            if not is_duplicate_key(exc):
                raise
            logger.client.log_inputs(logger.run_id, datasets=datasets)


def record_generator_model(logger: RunLogger, generator: nn.Module) -> str:
    """Log the trained generator as an MLflow model (``mlflow.pytorch.load_model`` loads it); returns its URI.

    Pickled (not pt2, which needs an example input to trace), with the exact torch pin as its requirement:
    inferring requirements would import-scan the environment, seconds a run.
    """
    model = copy.deepcopy(generator).cpu().eval()
    # MLflow warns on every pickled model; this one is ganbench's own code, loaded by ganbench users.
    quiet = logging.getLogger("mlflow.pytorch")
    level, quiet.level = quiet.level, logging.ERROR
    with writing(logger.client, logger.run_id, f"the {layout.GENERATOR_MODEL_NAME} model"):
        # Created here, in the run's experiment: given only a run id, MLflow files the model under the default
        # experiment (it looks for an active run, and ganbench logs without one), so the UI's Models views stayed empty.
        run = logger.client.get_run(logger.run_id)
        created = logger.client.create_logged_model(run.info.experiment_id, name=layout.GENERATOR_MODEL_NAME,
                                                    source_run_id=logger.run_id, params=dict(run.data.params))
        info = mlflow.pytorch.log_model(
            model,
            name=layout.GENERATOR_MODEL_NAME,
            model_id=created.model_id,
            run_id=logger.run_id,
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"ganbench=={__version__}"],
        )
    quiet.setLevel(level)
    logger.set_tags({layout.GENERATOR_MODEL_TAG: info.model_uri})
    return info.model_uri


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
