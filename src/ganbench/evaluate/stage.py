"""The evaluation stage: score a generator against real data and log the numbers to its MLflow run.

``evaluate_generator`` runs at the end of training (and every ``eval.every`` epochs) and for each run
``python -m ganbench.evaluate`` re-scores. Classifier runs and the real-data reference run go to
``settings.experiment`` in the same store as the scored run.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from ganbench.errors import ConfigError
from ganbench.evaluate.evaluator import get_evaluator
from ganbench.evaluate.record import log_scores
from ganbench.evaluate.reference import reference_run
from ganbench.evaluate.settings import EvalSettings
from ganbench.tracking import RunLogger
from ganbench.tracking.layout import INCEPTION_SKIPPED_TAG, eval_artifact_dir


def evaluate_generator(
    settings: EvalSettings,
    generator: nn.Module,
    conditional: bool,
    num_classes: int,
    device: torch.device,
    logger: RunLogger,
    step: int | None = None,
    artifact_dir: str | None = None,
) -> dict[str, float]:
    """Score ``generator`` and log metrics (at ``step``), measurement tags and artifacts to ``logger``'s run."""
    # Evaluation draws its own seeded randomness (and may train classifiers): the training run's
    # random stream must continue after it exactly as if nothing had happened.
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        return _evaluate_generator(settings, generator, conditional, num_classes, device, logger, step, artifact_dir)


def _evaluate_generator(
    settings: EvalSettings,
    generator: nn.Module,
    conditional: bool,
    num_classes: int,
    device: torch.device,
    logger: RunLogger,
    step: int | None,
    artifact_dir: str | None,
) -> dict[str, float]:
    if settings.noise_name is None or settings.noise_dim is None:
        raise ConfigError("evaluating a generator needs its noise prior: the config has no noise section (noise=normal, ...)")
    evaluator = get_evaluator(settings, device, (logger.client, settings.experiment))
    if num_classes != evaluator.num_classes:
        raise ConfigError(f"the generator has {num_classes} classes but {evaluator.dataset} has {evaluator.num_classes}")
    measured = evaluator.measured_on
    if settings.reference_run:
        measured["reference_run_id"] = reference_run(evaluator, logger.client, settings.experiment)
    started = time.perf_counter()
    scores = evaluator.score_generator(generator, conditional, settings.noise_dim, settings.noise_name)
    # The per-evaluation cost only: classifier training and real features are paid once and cached.
    scores.metrics["eval_seconds"] = time.perf_counter() - started
    measured.update(scores.measured)  # what only the scoring knew (the size samples were resized from)
    step = 0 if step is None else int(step)
    if evaluator.inception_skipped:
        logger.set_tags({INCEPTION_SKIPPED_TAG: evaluator.inception_skipped})
    log_scores(logger, scores, step, artifact_dir or eval_artifact_dir(step), measured)
    return dict(scores.metrics)
