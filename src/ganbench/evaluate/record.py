"""What an evaluation leaves in its MLflow run: metrics at a step, measured.* tags, tables and figures."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
from PIL import Image
import torch

from ganbench.evaluate.scores import Scores
from ganbench.evaluate.figures import confusion_figure, histogram_figure
from ganbench.evaluate.metrics import format_report
from ganbench.evaluate.neighbours import NearestPairs
from ganbench.images import sample_grid
from ganbench.tracking import RunLogger
from ganbench.tracking.layout import MEASURED_PREFIX, NEAREST_PAIRS_FILE

PAIRS_PER_ROW = 4  # the pair grid: 4 (sample, nearest training image) pairs per row, 8 images


def pairs_grid(pairs: NearestPairs) -> Image.Image:
    """Each closest generated sample (left) beside its nearest training image (right), closest first."""
    both = torch.stack([pairs.samples, pairs.train], dim=1).flatten(0, 1)  # s0, t0, s1, t1, ...
    return sample_grid(both.float().div(127.5).sub(1.0), nrow=2 * PAIRS_PER_ROW)


def log_scores(logger: RunLogger, scores: Scores, step: int, artifact_dir: str, measured_on: Mapping[str, str], title: str = "") -> None:
    """Metrics at ``step``, measurement tags, and the tables and figures behind them under ``artifact_dir``."""
    logger.log_metrics(scores.metrics, step=step)
    logger.flush()
    logger.set_tags({f"{MEASURED_PREFIX}{k}": v for k, v in measured_on.items()})
    summary = {"step": step, "metrics": scores.metrics, "measured_on": dict(measured_on), **scores.to_json()}
    logger.log_text(json.dumps(summary, indent=2, sort_keys=True, default=float), f"{artifact_dir}/metrics.json")
    if scores.report is not None and scores.confusion is not None:
        logger.log_text(format_report(scores.report), f"{artifact_dir}/class_report.txt")
        logger.log_figure(confusion_figure(np.asarray(scores.confusion), title), f"{artifact_dir}/confusion_matrix.png")
    if scores.histogram is not None and scores.real_histogram is not None:
        histogram = {"predicted": scores.histogram, "real": scores.real_histogram}
        logger.log_text(json.dumps(histogram, indent=2), f"{artifact_dir}/class_histogram.json")
        logger.log_figure(histogram_figure(np.asarray(scores.histogram), np.asarray(scores.real_histogram), title), f"{artifact_dir}/class_histogram.png")
    if scores.pairs is not None and scores.pairs.samples.size(0):
        logger.log_image_file(pairs_grid(scores.pairs), f"{artifact_dir}/{NEAREST_PAIRS_FILE}")
