"""The real-data reference run: held-out real images scored like samples, logged once per store and setting (tag reference=real)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ganbench.data import cache_root
from ganbench.data.cache import cache_key
from ganbench.evaluate.evaluator import Evaluator
from ganbench.evaluate.scores import PAIR_IMAGES, Scores
from ganbench.evaluate.record import log_scores
from ganbench.files import atomic_write_bytes
from ganbench.locks import file_lock
from ganbench.tracking import experiment_id, keep_earliest, live_runs, mlflow_run
from ganbench.tracking.layout import (
    BN_MODE_MEASURED,
    INCEPTION_SKIPPED_TAG,
    REFERENCE_ARTIFACT_DIR,
    REFERENCE_KEY_TAG,
    REFERENCE_REAL,
    REFERENCE_TAG,
    ROLE_REFERENCE,
    ROLE_TAG,
)

log = logging.getLogger("ganbench.evaluate")

_REFERENCE_RUNS: dict[tuple[str, str], str] = {}  # (store, key) -> run id, per process


def reference_run(evaluator: Evaluator, client: Any, experiment: str) -> str:
    """The real-data reference run for this setting in this store: found, or computed and logged."""
    # Real images have no Parzen row (Evaluator.score_real): eval.parzen does not change this one either.
    measured = {k: v for k, v in evaluator.measured_on.items() if not k.startswith("parzen")}
    # Real images are not sampled: the BatchNorm mode does not change this row (one reference row for every mode).
    measured[BN_MODE_MEASURED] = "none (real images)"
    scoring = {k: v for k, v in evaluator.settings.scoring().items() if k not in ("bn_mode", "standing_steps") and not k.startswith("parzen")}
    key = cache_key(role="reference", measured=measured, eval=scoring)
    memo = (client.tracking_uri, key)
    if memo in _REFERENCE_RUNS:
        return _REFERENCE_RUNS[memo]
    # Parallel sweep jobs starting cold must log one reference run between them, not one each.
    with file_lock(cache_root() / "eval" / f"reference-{key}.lock"):
        _REFERENCE_RUNS[memo] = _find_or_log_reference(evaluator, client, experiment, key, measured)
    return _REFERENCE_RUNS[memo]


def forget_reference_runs() -> None:
    """Drop the per-process memo of reference runs (as a fresh sweep worker has none)."""
    _REFERENCE_RUNS.clear()


def _find_or_log_reference(evaluator: Evaluator, client: Any, experiment: str, key: str, measured: dict[str, str]) -> str:
    """The run id of the reference run with ``key`` in ``experiment``, logging it (scores cached on disk) if missing."""
    exp_id = experiment_id(client, experiment)
    found = live_runs(client, exp_id, _reference_filter(key))
    if found:
        return found[0]
    path = cache_root() / "eval" / f"reference-{evaluator.dataset}-{key}.json"
    scores = _cached_scores(path)
    if scores is None:
        scores = evaluator.score_real()
        atomic_write_bytes(path, json.dumps(scores.to_json(pair_images=True), default=float).encode())
    tags = {REFERENCE_TAG: REFERENCE_REAL, ROLE_TAG: ROLE_REFERENCE, "dataset": evaluator.dataset, REFERENCE_KEY_TAG: key}
    if evaluator.inception_skipped:
        tags[INCEPTION_SKIPPED_TAG] = evaluator.inception_skipped
    with mlflow_run(client, experiment, f"reference-real-{evaluator.dataset}", tags) as logger:
        logger.log_params({"eval.num_samples": evaluator.num_samples, "dataset.name": evaluator.dataset, "dataset.image_size": evaluator.image_size})
        log_scores(logger, scores, 0, REFERENCE_ARTIFACT_DIR, measured, f"{evaluator.dataset}: held-out real images")
    return keep_earliest(client, exp_id, _reference_filter(key), logger.run_id, "reference run")


def _cached_scores(path: Path) -> Scores | None:
    """The reference scores cached at ``path``, or None when they are missing, unreadable or lack the pair grid."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        scores = Scores.from_json(data)
    except (OSError, ValueError, TypeError, KeyError) as err:
        log.warning("cached reference scores %s are unreadable (%s); recomputing them", path, err)
        return None
    if PAIR_IMAGES not in data:  # written before the pair grid was cached: its run would lack nearest_pairs.png
        log.info("cached reference scores %s have no pair grid; recomputing them", path)
        return None
    return scores


def _reference_filter(key: str) -> str:
    return f"tags.{REFERENCE_TAG} = '{REFERENCE_REAL}' and tags.{REFERENCE_KEY_TAG} = '{key}'"
