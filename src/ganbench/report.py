"""Leaderboard reports: configurations ranked over seeds, read back from MLflow.

``python -m ganbench.report [parent=<run id>|latest|none] [experiment=ganbench]
[tracking.uri=sqlite:///mlflow.db] [metric=fid_clf] [out=reports/<sweep>]`` writes
``leaderboard.md``, ``leaderboard.csv`` and a self-contained ``leaderboard.html`` and logs
them to the sweep's parent run. Rows are configurations (model, loss, stabilize, dataset,
noise, plus any other key the sweep varied), aggregated over seeds: mean and t-based 95%
confidence interval of every metric, the seed count, failed/diverged/running counts, the rank
by the chosen metric, and Welch's t-test of each row against the best one (Holm-adjusted).
The same runs always give the same files: no clock, no random state, fixed orderings.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganbench.tracking import GRID_AXES

ALPHA = 0.05
TEST_NAME = "Welch's t-test"
TEST_NOTE = (
    "Welch's two-sided t-test of each row's per-seed values against the best row's, Holm-adjusted over the "
    "comparisons made (alpha = {alpha}). It allows the two configurations different seed-to-seed spreads and works "
    "from 2 seeds a side; rank tests cannot: with 3 seeds each the smallest p Mann-Whitney can give is 0.10. "
    "It assumes each configuration's values are roughly normal across seeds; with few seeds it has little power, "
    "so 'no' means 'not shown to differ', not 'equal'."
)

# Columns, in this order when present. Anything else is shown only when asked for (metrics=...).
EVAL_METRICS = (
    "fid_clf", "kid_clf", "is_clf", "precision_clf", "recall_clf", "gen_accuracy", "intra_fid_clf", "cas",
    "modes_covered", "mode_kl", "fid_inception", "kid_inception", "is_inception",
)
LOSS_METRICS = ("d_loss", "g_loss")  # shown when no run has evaluation metrics
HIGHER_IS_BETTER = ("is_", "precision", "recall", "gen_accuracy", "cas", "modes_covered", "accuracy")
LOWER_IS_BETTER = ("fid", "kid", "intra_fid", "mode_kl")
STATUSES = ("FINISHED", "FAILED", "KILLED", "RUNNING")
TOP_CURVES = 10  # loss / quality curves for the best this-many rows (every row is in the table)


class ReportError(Exception):
    """The report cannot be made as asked: no such store, experiment, sweep or metric."""


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Stat:
    """One metric of one configuration over its seeds: mean, sample std and t-based 95% interval."""

    values: tuple[float, ...]
    mean: float | None
    std: float | None
    low: float | None
    high: float | None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def half_width(self) -> float | None:
        return None if self.high is None or self.mean is None else self.high - self.mean


def summarize(values: Iterable[float], confidence: float = 0.95) -> Stat:
    """Mean and ``confidence`` interval ``mean +- t(n-1) * s / sqrt(n)``; no interval from one value."""
    from scipy import stats

    vals = tuple(float(v) for v in values)
    n = len(vals)
    if n == 0:
        return Stat(vals, None, None, None, None)
    mean = math.fsum(vals) / n
    if n == 1:
        return Stat(vals, mean, None, None, None)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Stat(vals, mean, std, mean - half, mean + half)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p of Welch's t-test; None when it cannot be computed (fewer than 2 values a side, no variance).

    t = (mean_a - mean_b) / sqrt(v_a/n_a + v_b/n_b) with Welch-Satterthwaite degrees of freedom.
    """
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    sa, sb = summarize(a), summarize(b)
    assert sa.mean is not None and sb.mean is not None and sa.std is not None and sb.std is not None
    ea, eb = sa.std**2 / sa.n, sb.std**2 / sb.n  # squared standard errors
    if ea + eb == 0:
        return None
    t = (sa.mean - sb.mean) / math.sqrt(ea + eb)
    df = (ea + eb) ** 2 / (ea**2 / (sa.n - 1) + eb**2 / (sb.n - 1))
    return float(2 * stats.t.sf(abs(t), df))


def holm(pvalues: Mapping[Any, float]) -> dict[Any, float]:
    """Holm-Bonferroni adjusted p-values (they control the family-wise error rate of the comparisons)."""
    ordered = sorted(pvalues.items(), key=lambda kv: (kv[1], str(kv[0])))
    m, running, adjusted = len(ordered), 0.0, {}
    for i, (key, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[key] = running
    return adjusted


def higher_is_better(metric: str) -> bool | None:
    """True / False for metrics ganbench knows; None when it has to assume (lower)."""
    if metric.startswith(LOWER_IS_BETTER):
        return False
    if metric.startswith(HIGHER_IS_BETTER):
        return True
    return None


# --------------------------------------------------------------------------- runs


@dataclass
class RunRecord:
    """What the report reads from one MLflow run."""

    run_id: str
    name: str
    status: str
    start_time: int
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]

    @property
    def seed(self) -> str:
        return self.tags.get("seed", self.params.get("seed", "?"))

    @property
    def diverged(self) -> bool:
        return "diverged" in self.tags

    @property
    def error(self) -> str:
        return self.tags.get("diverged") or self.tags.get("error") or self.tags.get("killed") or ""

    @classmethod
    def of(cls, run: Any) -> "RunRecord":
        return cls(
            run_id=run.info.run_id,
            name=run.info.run_name or run.data.tags.get("mlflow.runName", run.info.run_id),
            status=run.info.status,
            start_time=int(run.info.start_time or 0),
            tags=dict(run.data.tags),
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
        )


def search_all(client: Any, experiment_id: str, filter_string: str = "") -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def parse_overrides(text: str) -> dict[str, str]:
    """``'model=dcgan optim.lr=1e-4 sweep=smoke'`` -> ``{'model': 'dcgan', 'optim.lr': '1e-4', 'sweep': 'smoke'}``."""
    out = {}
    for item in re.split(r"(?<!\\) ", text.strip()):
        key, sep, value = item.partition("=")
        if sep:
            out[key.lstrip("+~")] = value.replace("\\", "")
    return out


def extra_axes(runs: Sequence[RunRecord]) -> list[str]:
    """Keys besides the grid axes and the seed whose value differs between the runs' job overrides."""
    values: dict[str, set[str]] = {}
    parsed = [parse_overrides(r.tags.get("overrides", "")) for r in runs]
    keys = sorted({k for p in parsed for k in p} - set(GRID_AXES) - {"seed"})
    for key in keys:
        values[key] = {p.get(key, "") for p in parsed}
    return [k for k in keys if len(values[k]) > 1]


# --------------------------------------------------------------------------- the leaderboard


@dataclass
class Row:
    """One configuration: its runs over seeds and their statistics."""

    key: tuple[str, ...]
    runs: list[RunRecord]
    stats: dict[str, Stat] = field(default_factory=dict)
    rank: int | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    differs: bool | None = None  # from the best row, at ALPHA after Holm; None: not tested
    note: str = ""
    best_run: RunRecord | None = None
    best_run_reason: str = ""
    reference: bool = False

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    @property
    def diverged(self) -> int:
        return sum(r.diverged for r in self.runs)

    @property
    def seeds(self) -> list[str]:
        return sorted({r.seed for r in self.runs if r.status == "FINISHED"}, key=_natural)


@dataclass
class Leaderboard:
    """Everything a report shows, computed once; the writers only format it."""

    experiment: str
    tracking_uri: str
    metric: str
    lower_is_better: bool
    direction_assumed: bool
    metrics: list[str]
    columns: list[str]  # configuration columns: the grid axes, then extra swept keys
    rows: list[Row]  # ranked rows first (by rank), then unranked ones
    references: list[Row]
    parent: RunRecord | None
    warnings: list[str]
    measured: dict[str, list[str]]  # metric -> lines saying what it was measured on
    eval_settings: dict[str, str]  # the eval.* params every evaluated run shares (the rest differ: see warnings)
    headers: dict[str, str]  # metric -> short "sample count and reference" for its column header
    invalid_jobs: list[dict[str, Any]]
    all_runs: list[RunRecord]

    @property
    def ranked(self) -> list[Row]:
        return [r for r in self.rows if r.rank is not None]

    @property
    def datasets(self) -> list[str]:
        """The datasets of the rows, in table order: each is ranked on its own (metrics compare to its real data)."""
        return list(dict.fromkeys(dataset_of(r) for r in [*self.rows, *self.references]))

    @property
    def bests(self) -> dict[str, Row]:
        """The best row of each dataset that has a ranked row."""
        return {dataset_of(r): r for r in reversed(self.ranked) if r.rank == 1}

    @property
    def best(self) -> Row | None:
        """The best row of the first dataset (the only one in most reports)."""
        return next(iter(self.bests.values()), None)

    def is_best(self, row: Row) -> bool:
        return row.rank is not None and self.bests.get(dataset_of(row)) is row

    def display_rows(self) -> list[Row]:
        """Table order: per dataset, its real-data reference row, then its ranked rows, then its unranked ones."""
        out = []
        for dataset in self.datasets:
            out += [r for r in self.references if dataset_of(r) == dataset]
            out += [r for r in self.rows if dataset_of(r) == dataset]
        return out

    def arrow(self, metric: str) -> str:
        hib = higher_is_better(metric)
        if metric == self.metric:
            hib = not self.lower_is_better
        return "" if hib is None else ("↑" if hib else "↓")


DATASET = GRID_AXES.index("dataset")


def dataset_of(row: Row) -> str:
    return row.runs[0].tags.get("dataset", "?") if row.reference else row.key[DATASET]


def _natural(text: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def build(
    runs: Sequence[RunRecord],
    metric: str = "fid_clf",
    *,
    experiment: str = "",
    tracking_uri: str = "",
    direction: str = "auto",
    metrics: Sequence[str] | None = None,
    references: Sequence[RunRecord] = (),
    parent: RunRecord | None = None,
    invalid_jobs: Sequence[dict[str, Any]] = (),
    alpha: float = ALPHA,
) -> Leaderboard:
    """Group ``runs`` into configurations, aggregate over seeds, rank by ``metric`` and test against the best."""
    if direction not in ("auto", "min", "max"):
        raise ReportError(f"direction={direction!r}: choose auto, min or max")
    known = higher_is_better(metric)
    assumed = direction == "auto" and known is None
    lower = {"min": True, "max": False}.get(direction, not known)
    runs = sorted(runs, key=lambda r: (r.start_time, r.run_id))
    warnings: list[str] = []

    # A seed preset (tag preset, from experiment=<preset>) is part of what a configuration is.
    presets = ["preset"] if any("preset" in r.tags for r in runs) else []
    extras = [k for k in extra_axes(runs) if not (presets and k == "experiment")]
    columns = [*GRID_AXES, *presets, *extras]

    def key_of(run: RunRecord) -> tuple[str, ...]:
        overrides = parse_overrides(run.tags.get("overrides", ""))
        return (tuple(run.tags.get(a, "?") for a in GRID_AXES) + tuple(run.tags.get(p, "") for p in presets)
                + tuple(overrides.get(k, "") for k in extras))

    groups: dict[tuple[str, ...], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(key_of(run), []).append(run)

    finished = [r for r in runs if r.status == "FINISHED"]
    if metrics is None:
        present = {k for r in finished for k in r.metrics}
        metrics = [m for m in EVAL_METRICS if m in present] or [m for m in LOSS_METRICS if m in present]
    metrics = [metric, *[m for m in metrics if m != metric]]

    rows = [Row(key, sorted(group, key=lambda r: (_natural(r.seed), r.run_id))) for key, group in groups.items()]
    for row in rows:
        done = [r for r in row.runs if r.status == "FINISHED"]
        for m in metrics:
            row.stats[m] = summarize(r.metrics[m] for r in done if _finite(r.metrics.get(m)))
        scored = [r for r in done if _finite(r.metrics.get(metric))]
        if scored:
            best_value = (min if lower else max)(r.metrics[metric] for r in scored)
            row.best_run = min((r for r in scored if r.metrics[metric] == best_value), key=lambda r: _natural(r.seed))
            row.best_run_reason = f"seed {row.best_run.seed}, the best {metric} of the row"
        elif done:
            row.best_run = done[0]
            row.best_run_reason = f"seed {row.best_run.seed} (no {metric} to choose by: the lowest seed)"
        row.note = _unranked_reason(row, metric) if not scored else ""

    def sort_value(row: Row) -> float:
        mean = row.stats[metric].mean
        assert mean is not None
        return mean if lower else -mean

    # Each dataset is ranked on its own: its metrics are measured against its own real images and classifier.
    ordered: list[Row] = []
    unranked: list[Row] = []
    for dataset in sorted({r.key[DATASET] for r in rows}):
        block = [r for r in rows if r.key[DATASET] == dataset]
        ranked = sorted((r for r in block if r.stats[metric].n), key=lambda r: (sort_value(r), r.key))
        left = sorted((r for r in block if not r.stats[metric].n), key=lambda r: r.key)
        for i, row in enumerate(ranked):  # competition ranking: equal means share a rank
            row.rank = ranked[i - 1].rank if i and sort_value(row) == sort_value(ranked[i - 1]) else i + 1
        if ranked:
            best = ranked[0]
            raw = {}
            for row in ranked[1:]:
                row.p_value = welch_p(row.stats[metric].values, best.stats[metric].values)
                if row.p_value is not None:
                    raw[row.key] = row.p_value
            adjusted = holm(raw)  # over this dataset's comparisons with its best row
            for row in ranked[1:]:
                if row.key in adjusted:
                    row.p_adjusted = adjusted[row.key]
                    row.differs = row.p_adjusted < alpha
        ordered += ranked + left
        unranked += left

    # Say what is missing or unfinished; never drop a run silently.
    running = [r for r in runs if r.status == "RUNNING"]
    if running:
        warnings.append(
            f"{len(running)} run(s) still RUNNING, not counted yet; the numbers may change: {_names(running)}"
        )
    missing = [r for r in finished if not _finite(r.metrics.get(metric))]
    if missing:
        why = "not logged" if all(metric not in r.metrics for r in missing) else "missing or not finite"
        warnings.append(
            f"{len(missing)} FINISHED run(s) have no {metric} ({why}; evaluation disabled or not run yet?): {_names(missing)}"
        )
    if unranked:
        warnings.append(
            f"{len(unranked)} configuration(s) have no {metric} and are listed unranked at the bottom: "
            + "; ".join(f"{' · '.join(v for v in r.key if v)}: {r.note}" for r in unranked)
        )
    if invalid_jobs:
        warnings.append(f"{len(invalid_jobs)} job(s) of the sweep never started a run (invalid config); see 'Jobs that did not run'")
    if len({r.key[DATASET] for r in rows}) > 1:
        warnings.append("the runs cover several datasets; each is ranked and tested on its own (its metrics are measured "
                        "against its own real images), so compare rows within a dataset only")
    if assumed:
        warnings.append(f"ganbench does not know whether a higher {metric} is better; ranked lower-is-better (pass direction=max otherwise)")
    partly: dict[int, list[str]] = {}  # metrics some finished runs lack, grouped by how many lack them
    for m in metrics:
        absent = sum(m not in r.metrics for r in finished)
        if m != metric and 0 < absent < len(finished):
            partly.setdefault(absent, []).append(m)
    for absent, names in sorted(partly.items()):
        hint = " (only conditional models have gen_accuracy, intra_fid_clf and cas)" if {"gen_accuracy", "intra_fid_clf", "cas"} & set(names) else ""
        warnings.append(f"{', '.join(names)}: missing from {absent} of {len(finished)} finished run(s){hint}")

    measured, headers = describe_metrics(metrics, finished, warnings)
    shared_eval = eval_settings([r for r in finished if _finite(r.metrics.get(metric))], warnings)
    ref_rows = []
    for ref in sorted(references, key=lambda r: (r.tags.get("dataset", ""), r.run_id)):
        row = Row((f"real data ({ref.tags.get('dataset', '?')})",), [ref], reference=True)
        row.stats = {m: summarize([ref.metrics[m]] if _finite(ref.metrics.get(m)) else []) for m in metrics}
        ref_rows.append(row)
    return Leaderboard(
        experiment=experiment,
        tracking_uri=tracking_uri,
        metric=metric,
        lower_is_better=lower,
        direction_assumed=assumed,
        metrics=list(metrics),
        columns=columns,
        rows=ordered,
        references=ref_rows,
        parent=parent,
        warnings=warnings,
        measured=measured,
        eval_settings=shared_eval,
        headers=headers,
        invalid_jobs=list(invalid_jobs),
        all_runs=list(runs),
    )


def _names(runs: Sequence[RunRecord], limit: int = 10) -> str:
    """'name (run id prefix), ...' for the first ``limit`` runs; the table of runs lists them all."""
    shown = ", ".join(f"{r.name} ({r.run_id[:8]})" for r in runs[:limit])
    return shown + (f" and {len(runs) - limit} more (see the list of runs)" if len(runs) > limit else "")


def _unranked_reason(row: Row, metric: str) -> str:
    counts = {s: row.count(s) for s in STATUSES}
    if not counts["FINISHED"]:
        parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s]]
        diverged = f", {row.diverged} diverged" if row.diverged else ""
        return f"no finished run ({', '.join(parts)}{diverged})"
    return f"{metric} not logged by its {counts['FINISHED']} finished run(s)"


def settings(runs: Sequence[RunRecord], tag: str, param: str | None = None) -> list[str]:
    """The distinct values of ``measured.<tag>`` (else param ``param``) over ``runs``, sorted."""
    found = set()
    for r in runs:
        value = r.tags.get(f"measured.{tag}")
        if value is None and param is not None:
            value = r.params.get(param)
        if value is not None:
            found.add(value)
    return sorted(found, key=_natural)


def _one(values: Sequence[str]) -> str:
    """A setting's value, or all of them in braces when runs differ; '?' when none recorded it."""
    shown = [f"{int(v):,}" if v.isdigit() else v for v in values]
    if not shown:
        return "?"
    return shown[0] if len(shown) == 1 else "{" + ", ".join(shown) + "}"


def eval_settings(runs: Sequence[RunRecord], warnings: list[str]) -> dict[str, str]:
    """The ``eval.*`` params (the evaluation config) the scored runs share; a warning names those that differ."""
    keys = sorted({k for r in runs for k in r.params if k.startswith("eval.") and k != "eval.enabled"})
    shared, differing = {}, []
    for key in keys:
        values = sorted({r.params.get(key, "(unset)") for r in runs}, key=_natural)
        if len(values) == 1:
            shared[key] = values[0]
        else:
            differing.append(f"{key} in {{{', '.join(values)}}}")
    if differing:
        warnings.append("the ranked runs were evaluated with different settings: " + "; ".join(differing))
    return shared


def describe_metrics(metrics: Sequence[str], runs: Sequence[RunRecord], warnings: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """What each metric was measured on, from the ``measured.*`` tags (else ``eval.*`` params) of the runs that have it.

    Returns a footnote and a short column header ("sample count vs reference") per metric. A setting
    that differs between runs shows all its values and raises a warning: such numbers are not comparable.
    """
    measured: dict[str, list[str]] = {}
    headers: dict[str, str] = {}
    mixed: dict[tuple[str, str], list[str]] = {}
    for m in metrics:
        scored = [r for r in runs if m in r.metrics]
        if m in LOSS_METRICS or m in ("d_real", "d_fake"):
            headers[m] = "last training batch"
            batch = _one(settings(scored, "-", "train.batch_size"))
            measured[m] = [f"{m}: the value logged at the run's last training step, on one batch (train.batch_size={batch}); not a quality measure"]
            continue
        if not scored:
            headers[m] = "not logged"
            measured[m] = [f"{m}: not logged by any finished run"]
            continue
        inception = m.endswith("_inception")
        samples_v = settings(scored, "inception_num_samples" if inception else "num_samples", "eval.num_samples")
        split_v = settings(scored, "reference_split", "eval.reference_split")
        extractor_v = settings(scored, "inception_extractor" if inception else "feature_extractor")
        sha_v = [] if inception else sorted({v[:12] for v in settings(scored, "classifier_sha256")})
        samples, split, images = _one(samples_v), _one(split_v), _one(settings(scored, "reference_images"))
        held, held_split = _one(settings(scored, "heldout_images")), _one(settings(scored, "heldout_split", "eval.heldout_split"))
        if m == "cas":
            headers[m] = f"{samples} samples; tested on {held} {held_split}"
            line = (f"cas: accuracy on {held} held-out real images ({held_split} split) of a classifier trained only on "
                    f"{samples} generated samples per epoch")
        elif m == "gen_accuracy":
            headers[m] = f"{samples} samples"
            line = f"gen_accuracy: share of {samples} generated samples the auxiliary classifier assigns to the class asked for"
        else:
            headers[m] = f"{samples} samples vs {split} ({images})"
            line = f"{m}: {samples} generated samples vs {images} real images of the {split} split"
        if extractor_v:
            line += f"; features: {_one(extractor_v)}"
        if sha_v:
            line += f", classifier sha256 {_one(sha_v)}"
        measured[m] = [line]
        for what, values in (("sample counts", samples_v), ("reference splits", split_v), ("classifiers", sha_v), ("feature extractors", extractor_v)):
            if len(values) > 1:
                mixed.setdefault((what, ", ".join(values)), []).append(m)
    for (what, values), names in mixed.items():
        warnings.append(f"{', '.join(names)}: measured with different {what} across runs ({values}); those values are not comparable")
    return measured, headers


# --------------------------------------------------------------------------- reading MLflow


@dataclass
class Loaded:
    """A leaderboard and what the writers fetch from MLflow for it (images and curves)."""

    board: Leaderboard
    samples: dict[str, bytes]  # run id -> last sample grid PNG
    curves: dict[str, dict[str, list[tuple[int, float]]]]  # run id -> metric -> [(step, value)]


def find_parent(client: Any, experiment_id: str, spec: str) -> RunRecord | None:
    """``latest``: the newest sweep parent run (tag role=sweep); ``none``: no parent; else a run id."""
    if spec == "none":
        return None
    if spec == "latest":
        sweeps = search_all(client, experiment_id, "tags.role = 'sweep'")
        if not sweeps:
            raise ReportError("this experiment has no sweep parent run (tag role=sweep); pass parent=<run id>, or parent=none to rank every run")
        return RunRecord.of(max(sweeps, key=lambda r: (r.info.start_time or 0, r.info.run_id)))
    from mlflow.exceptions import MlflowException

    try:
        return RunRecord.of(client.get_run(spec))
    except MlflowException:
        raise ReportError(f"no run {spec!r} in this store; check parent= and tracking.uri=") from None


def load(
    client: Any,
    experiment: str,
    parent: str = "latest",
    metric: str = "fid_clf",
    direction: str = "auto",
    metrics: Sequence[str] | None = None,
    alpha: float = ALPHA,
) -> Loaded:
    """Read the runs of one sweep (or of the whole experiment) and build their leaderboard."""
    import json

    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ReportError(f"no experiment {experiment!r} in {client.tracking_uri}; check experiment= and tracking.uri=")
    parent_run = find_parent(client, exp.experiment_id, parent)
    if parent_run is not None:
        found = search_all(client, exp.experiment_id, f"tags.mlflow.parentRunId = '{parent_run.run_id}'")
    else:
        found = search_all(client, exp.experiment_id)
    runs = [RunRecord.of(r) for r in found if r.data.tags.get("role") not in ("sweep", "classifier", "reference")]
    if not runs:
        where = f"sweep {parent_run.run_id}" if parent_run else f"experiment {experiment!r}"
        raise ReportError(f"{where} has no training runs yet")

    invalid: list[dict[str, Any]] = []
    if parent_run is not None:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                jobs = json.loads(Path(client.download_artifacts(parent_run.run_id, "sweep/jobs.json", tmp)).read_text())
            invalid = [j for j in jobs if j.get("status") == "INVALID"]
        except Exception:  # a sweep still running, or one made before ganbench logged its jobs
            invalid = []

    references = reference_runs(client, exp.experiment_id, runs)
    board = build(
        runs, metric, experiment=experiment, tracking_uri=client.tracking_uri, direction=direction, metrics=metrics,
        references=references, parent=parent_run, invalid_jobs=invalid, alpha=alpha,
    )
    if parent_run is not None and parent_run.status == "RUNNING":
        board.warnings.insert(0, f"the sweep (parent run {parent_run.run_id[:8]}) is still RUNNING: jobs may be missing from this report")
    samples = {}
    for row in board.rows:
        if row.best_run is not None:
            png = last_sample_grid(client, row.best_run.run_id)
            if png is not None:
                samples[row.best_run.run_id] = png
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for row in (board.ranked or board.rows)[:TOP_CURVES]:  # the rows plot_curves draws
        for run in row.runs:
            if run.status != "FINISHED":
                continue
            curves[run.run_id] = {
                key: sorted((m.step, m.value) for m in client.get_metric_history(run.run_id, key))
                for key in ("d_loss", "g_loss", metric)
                if key in run.metrics
            }
    return Loaded(board, samples, curves)


def reference_runs(client: Any, experiment_id: str, runs: Sequence[RunRecord]) -> list[RunRecord]:
    """The real-data reference run per dataset: the one the runs name (``measured.reference_run_id``), else the newest."""
    datasets = sorted({r.tags.get("dataset", "") for r in runs} - {""})
    named: dict[str, int] = {}
    for r in runs:
        rid = r.tags.get("measured.reference_run_id")
        if rid:
            named[rid] = named.get(rid, 0) + 1
    chosen: dict[str, RunRecord] = {}
    for rid in sorted(named, key=lambda k: (-named[k], k)):
        try:
            ref = RunRecord.of(client.get_run(rid))
        except Exception:
            continue
        chosen.setdefault(ref.tags.get("dataset", ""), ref)
    missing = [d for d in datasets if d not in chosen]
    if missing:
        for run in sorted(search_all(client, experiment_id, "tags.reference = 'real'"), key=lambda r: (-(r.info.start_time or 0), r.info.run_id)):
            ref = RunRecord.of(run)
            if ref.tags.get("dataset") in missing and ref.status == "FINISHED":
                chosen.setdefault(ref.tags["dataset"], ref)
    return [chosen[d] for d in datasets if d in chosen]


def last_sample_grid(client: Any, run_id: str) -> bytes | None:
    """The run's last ``samples/epoch_NNN.png`` (the final generator's grid), or None."""
    try:
        grids = sorted(a.path for a in client.list_artifacts(run_id, "samples") if re.fullmatch(r"samples/epoch_\d+\.png", a.path))
    except Exception:
        return None
    if not grids:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, grids[-1], tmp)).read_bytes()


# --------------------------------------------------------------------------- formatting


def fmt(value: float | None) -> str:
    """Four significant digits, fixed: the same number always prints the same way."""
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3e}"
    return f"{value:.4g}"


def fmt_p(p: float | None) -> str:
    return "–" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def cell(stat: Stat, row_n: int | None = None) -> str:
    """``mean ± half-width`` (95% CI), with its own n when that differs from the row's seed count."""
    if stat.mean is None:
        return "–"
    text = fmt(stat.mean) if stat.half_width is None else f"{fmt(stat.mean)} ± {fmt(stat.half_width)}"
    return text + (f" (n={stat.n})" if row_n is not None and stat.n != row_n else "")


def config_label(board: Leaderboard, row: Row) -> str:
    if row.reference:
        return row.key[0]
    return " · ".join(f"{v}" if c in GRID_AXES else f"{c}={v}" for c, v in zip(board.columns, row.key) if v)


def differs_text(board: Leaderboard, row: Row) -> str:
    if row.reference or row.rank is None:
        return "–"
    if board.is_best(row):
        return "best"
    if row.differs is None:
        return "n/a (needs ≥2 seeds and some spread)"
    return f"{'yes' if row.differs else 'no'} (p={fmt_p(row.p_adjusted)})"


def runs_text(row: Row) -> str:
    parts = [f"{row.count('FINISHED')}/{len(row.runs)} finished"]
    for status, label in (("FAILED", "failed"), ("KILLED", "killed"), ("RUNNING", "running")):
        if row.count(status):
            parts.append(f"{row.count(status)} {label}")
    if row.diverged:
        parts.append(f"{row.diverged} diverged")
    return ", ".join(parts)


def metric_header(board: Leaderboard, metric: str) -> str:
    arrow = board.arrow(metric)
    return f"{metric}{' ' + arrow if arrow else ''} ({board.headers.get(metric, '?')})"


def verdict(board: Leaderboard) -> str:
    """A few sentences per dataset: who won, by how much, and how sure the test is."""
    if not board.ranked:
        return f"No configuration has {board.metric} yet, so none is ranked; the table lists every configuration and why."
    return " ".join(_dataset_verdict(board, dataset) for dataset in board.datasets if dataset in board.bests)


def _dataset_verdict(board: Leaderboard, dataset: str) -> str:
    best = board.bests[dataset]
    stat = best.stats[board.metric]
    text = (
        f"Winner{f' on {dataset}' if len(board.bests) > 1 else ''}: {config_label(board, best)} with {board.metric} "
        f"{cell(stat)} over {stat.n} seed(s) ({'lower' if board.lower_is_better else 'higher'} is better)."
    )
    others = [r for r in board.ranked if dataset_of(r) == dataset and r is not best]
    if not others:
        text += " It is the only ranked configuration."
    else:
        beaten = [r for r in others if r.differs]
        tied = [r for r in others if r.differs is False]
        untested = [r for r in others if r.differs is None]
        if beaten or tied:
            text += (f" It is significantly better than {len(beaten)} of the {len(beaten) + len(tied)} other configuration(s) "
                     f"that could be tested ({TEST_NAME}, Holm-adjusted, alpha={ALPHA}).")
        if tied:
            text += " Not distinguishable from it: " + "; ".join(f"{config_label(board, r)} (p={fmt_p(r.p_adjusted)})" for r in tied) + "."
        if untested:
            text += f" {len(untested)} other ranked configuration(s) could not be tested against it (fewer than 2 seeds, or no spread)."
    if stat.n < 2:
        text += " With a single seed the winner is only a point estimate."
    for ref_row in board.references:
        ref = ref_row.stats.get(board.metric)
        if dataset_of(ref_row) == dataset and ref is not None and ref.mean is not None:
            text += f" Held-out real {dataset} images score {fmt(ref.mean)}."
    return text


def context_lines(board: Leaderboard) -> list[str]:
    lines = [f"Experiment `{board.experiment}` in `{board.tracking_uri}`."]
    if board.parent is not None:
        p = board.parent
        lines.append(f"Sweep: parent run `{p.run_id}` ({p.name}, {p.status}).")
        if p.tags.get("sweep.overrides"):
            lines.append(f"Sweep overrides: `{p.tags['sweep.overrides']}`.")
    else:
        lines.append("All training runs of the experiment (no sweep chosen).")
    n = len(board.all_runs)
    counts = ", ".join(f"{sum(r.status == s for r in board.all_runs)} {s}" for s in STATUSES if any(r.status == s for r in board.all_runs))
    diverged = sum(r.diverged for r in board.all_runs)
    lines.append(f"{n} run(s): {counts}" + (f" ({diverged} diverged)" if diverged else "") + f"; {len(board.rows)} configuration(s).")
    lines.append(
        f"Ranked by {board.metric} ({'lower' if board.lower_is_better else 'higher'} is better"
        f"{', assumed' if board.direction_assumed else ''}); every metric is the mean ± 95% CI half-width "
        "(Student t, n-1 degrees of freedom) over the FINISHED seeds of the configuration; n = seeds with the rank metric."
    )
    return lines


def table(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the leaderboard as text cells (shared by Markdown and HTML)."""
    header = ["rank", "configuration", "n", "runs", *[metric_header(board, m) for m in board.metrics], "differs from best"]
    body = []
    for row in board.display_rows():
        if row.reference:
            body.append(["ref", config_label(board, row), "1", "reference run", *[cell(row.stats[m]) for m in board.metrics], "–"])
            continue
        n = row.stats[board.metric].n
        body.append([
            str(row.rank) if row.rank is not None else "unranked",
            config_label(board, row),
            str(n),
            runs_text(row),
            *[cell(row.stats[m], n) for m in board.metrics],
            differs_text(board, row),
        ])
    return header, body


def footnotes(board: Leaderboard) -> list[str]:
    notes = [line for m in board.metrics for line in board.measured.get(m, [])]
    notes.append(TEST_NOTE.format(alpha=ALPHA))
    if board.references:
        notes.append(
            "ref rows: the real-data reference run (tag reference=real): held-out real images scored exactly like "
            "generated samples, one run, so no interval; the floor (or ceiling) a generator can reach."
        )
    else:
        notes.append("No real-data reference run was found (tag reference=real): evaluation was off or has not run.")
    if board.eval_settings:
        notes.append(
            "Evaluation settings of the ranked runs (their eval.* config params; a run scored again later by "
            "ganbench.evaluate carries that scoring's settings in its measured.* tags): "
            + ", ".join(f"{k}={v}" for k, v in board.eval_settings.items())
        )
    return notes


def to_markdown(board: Leaderboard) -> str:
    header, body = table(board)
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    out = ["# ganbench leaderboard", "", *context_lines(board), "", f"**{verdict(board)}**", ""]
    if board.warnings:
        out += ["## Warnings", "", *[f"- {w}" for w in board.warnings], ""]
    out += ["## Leaderboard", "", "| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in body]
    out += ["", "## Notes", "", *[f"- {n}" for n in footnotes(board)], ""]
    if board.invalid_jobs:
        out += ["## Jobs that did not run", ""]
        out += [f"- job #{j.get('num')}: `{' '.join(j.get('overrides', []))}`: {j.get('error')}" for j in board.invalid_jobs]
        out.append("")
    out += ["## Runs", "", "| configuration | seed | status | " + esc(board.metric) + " | run | note |", "|---|---|---|---|---|---|"]
    for row in board.rows:
        for run in row.runs:
            value = run.metrics.get(board.metric)
            note = esc(run.error.splitlines()[0][:120]) if run.error else ""
            out.append(f"| {esc(config_label(board, row))} | {run.seed} | {run.status}{' (diverged)' if run.diverged else ''} | "
                       f"{fmt(value) if _finite(value) else '–'} | `{run.run_id}` | {note} |")
    return "\n".join(out) + "\n"


def to_csv(board: Leaderboard) -> str:
    """One line per configuration (reference rows first), every number unrounded."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head = ["rank", *board.columns, "reference", "runs", "finished", "failed", "diverged", "killed", "running", "seeds"]
    for m in board.metrics:
        head += [f"{m}_n", f"{m}_mean", f"{m}_std", f"{m}_ci95_low", f"{m}_ci95_high"]
    head += ["p_vs_best", "p_vs_best_holm", "differs_from_best", "best_seed", "best_run_id"]
    writer.writerow(head)

    def num(v: float | None) -> str:
        return "" if v is None else repr(float(v))

    for row in board.display_rows():
        key = list(row.key) + [""] * (len(board.columns) - len(row.key)) if not row.reference else [""] * len(board.columns)
        line = ["ref" if row.reference else (row.rank if row.rank is not None else ""), *key,
                row.key[0] if row.reference else "", len(row.runs), row.count("FINISHED"), row.count("FAILED"),
                row.diverged, row.count("KILLED"), row.count("RUNNING"), ";".join(row.seeds)]
        for m in board.metrics:
            s = row.stats[m]
            line += [s.n, num(s.mean), num(s.std), num(s.low), num(s.high)]
        differs = "" if row.differs is None else str(row.differs).lower()
        line += [num(row.p_value), num(row.p_adjusted), differs,
                 row.best_run.seed if row.best_run else "", row.best_run.run_id if row.best_run else ""]
        writer.writerow(line)
    return buf.getvalue()


# --------------------------------------------------------------------------- plots


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _short(board: Leaderboard, row: Row) -> str:
    label = config_label(board, row)
    return label if len(label) <= 60 else label[:57] + "..."


def plot_ranked(board: Leaderboard) -> bytes | None:
    """The rank metric per configuration: mean with 95% CI, every seed as a tick, real data as a line; a panel per dataset."""
    panels = [(d, [r for r in board.ranked if dataset_of(r) == d]) for d in board.datasets]
    panels = [(d, rows) for d, rows in panels if rows]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [0.45 * len(rows) + 1.0 for _, rows in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, sum(heights) + 0.9), squeeze=False, layout="constrained",
                             gridspec_kw={"height_ratios": heights})
    for ax, (dataset, rows) in zip(axes[:, 0], panels):
        ys = list(range(len(rows)))[::-1]
        for y, row in zip(ys, rows):
            s = row.stats[board.metric]
            if board.is_best(row):
                color = "#2a9d8f"
            else:
                color = {True: "#e76f51", False: "#999999", None: "#8ab6d6"}[row.differs]
            if s.half_width is not None:
                ax.errorbar(s.mean, y, xerr=s.half_width, fmt="o", color=color, capsize=4, lw=2)
            else:
                ax.plot([s.mean], [y], "o", color=color)
            ax.plot(s.values, [y] * s.n, "|", color="black", ms=10, alpha=0.6)
        for ref in board.references:
            value = ref.stats[board.metric].mean
            if dataset_of(ref) == dataset and value is not None:
                ax.axvline(value, ls="--", color="#264653", lw=1, label=f"{ref.key[0]}: {fmt(value)}")
                ax.legend(fontsize=8, loc="best")
        ax.set_yticks(ys, [f"#{r.rank} {_short(board, r)}" for r in rows], fontsize=8)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.grid(axis="x", alpha=0.3)
        if len(panels) > 1:
            ax.set_title(dataset, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel(f"{board.metric} ({'lower' if board.lower_is_better else 'higher'} is better); mean ± 95% CI, | = one seed")
    fig.suptitle(f"{board.metric} by configuration (green: best; red: worse, Holm p<{ALPHA}; grey: not shown to differ; "
                 "blue: not testable)", fontsize=9)
    return _png(fig)


def _mean_curve(histories: Sequence[list[tuple[int, float]]]) -> tuple[list[int], list[float]]:
    """Mean over runs at each step any run logged, smoothed with a moving average of ~2% of the steps."""
    by_step: dict[int, list[float]] = {}
    for hist in histories:
        for step, value in hist:
            if math.isfinite(value):
                by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    means = [math.fsum(by_step[s]) / len(by_step[s]) for s in steps]
    window = max(1, len(steps) // 50)
    if window > 1:
        smooth, acc = [], 0.0
        for i, v in enumerate(means):
            acc += v
            if i >= window:
                acc -= means[i - window]
            smooth.append(acc / min(i + 1, window))
        means = smooth
    return steps, means


def plot_curves(board: Leaderboard, curves: Mapping[str, Mapping[str, list[tuple[int, float]]]], keys: Sequence[str], title: str) -> bytes | None:
    """One panel per key; one line per configuration (mean over its finished seeds)."""
    rows = [r for r in (board.ranked or board.rows)[:TOP_CURVES] if any(k in curves.get(run.run_id, {}) for run in r.runs for k in keys)]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.2), squeeze=False, layout="constrained")
    cmap = plt.get_cmap("tab10")
    for ax, key in zip(axes[0], keys):
        for i, row in enumerate(rows):
            hists = [curves[r.run_id][key] for r in row.runs if key in curves.get(r.run_id, {})]
            steps, means = _mean_curve(hists)
            if steps:
                label = f"#{row.rank} {_short(board, row)}" if row.rank is not None else _short(board, row)
                ax.plot(steps, means, color=cmap(i % 10), lw=2 if board.is_best(row) else 1, label=label, marker="o" if len(steps) < 20 else None)
        ax.set_title(key)
        ax.set_xlabel("generator step")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def plots(loaded: Loaded) -> dict[str, tuple[str, bytes | None, str]]:
    """Figure id -> (title, PNG or None, what it shows or why it is missing)."""
    board = loaded.board
    quality_logged = any(len(c.get(board.metric, [])) > 1 for c in loaded.curves.values())
    return {
        "ranked": (f"{board.metric} by configuration", plot_ranked(board),
                   f"Mean and 95% CI of {board.metric} per ranked configuration; ticks are single seeds."
                   if board.ranked else f"No configuration has {board.metric}: nothing to plot."),
        "losses": ("Loss curves", plot_curves(board, loaded.curves, ("d_loss", "g_loss"), "Training losses (mean over seeds)"),
                   f"Discriminator and generator loss per step, mean over each configuration's finished seeds (top {TOP_CURVES} rows)."),
        "quality": (f"{board.metric} over training",
                    plot_curves(board, loaded.curves, (board.metric,), f"{board.metric} over training (mean over seeds)") if quality_logged else None,
                    f"{board.metric} at each evaluation during training." if quality_logged
                    else f"{board.metric} was evaluated only once per run (set eval.every=N to log it during training)."),
    }


# --------------------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1400px;color:#222;padding:0 1em}
h1{margin-bottom:.2em} .ctx{color:#555;margin:.1em 0} .verdict{background:#e9f5f2;border-left:5px solid #2a9d8f;padding:.8em 1em;margin:1em 0;font-size:1.05em}
.warn{background:#fff4e5;border-left:5px solid #f4a261;padding:.5em 1em} table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:middle} th{background:#f4f4f4;position:sticky;top:0}
tr.best{background:#e9f5f2;font-weight:600} tr.ref{background:#eef1f6;font-style:italic} tr.unranked{color:#888}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap} img.grid{width:110px;image-rendering:pixelated;border:1px solid #ccc}
figure{margin:1.5em 0} figcaption{color:#555;font-size:.9em} .small{font-size:.85em;color:#555} code{background:#f4f4f4;padding:0 .2em}
"""


def _img(png: bytes, cls: str = "", alt: str = "") -> str:
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def to_html(loaded: Loaded) -> str:
    board = loaded.board
    e = html.escape
    header, body = table(board)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', "<title>ganbench leaderboard</title>",
             f"<style>{CSS}</style></head><body>", "<h1>ganbench leaderboard</h1>"]
    parts += [f'<p class="ctx">{_code(e(line))}</p>' for line in context_lines(board)]
    parts.append(f'<div class="verdict">{e(verdict(board))}</div>')
    if board.warnings:
        parts.append('<div class="warn"><b>Warnings</b><ul>' + "".join(f"<li>{e(w)}</li>" for w in board.warnings) + "</ul></div>")
    parts.append("<h2>Leaderboard</h2><table><thead><tr>")
    parts.append("".join(f"<th>{e(h)}</th>" for h in [header[0], "samples (best seed)", *header[1:]]))
    parts.append("</tr></thead><tbody>")
    for row, cells in zip(board.display_rows(), body):
        cls = "ref" if row.reference else ("best" if board.is_best(row) else ("unranked" if row.rank is None else ""))
        png = loaded.samples.get(row.best_run.run_id) if row.best_run else None
        image = _img(png, "grid", f"samples of {config_label(board, row)}") + f'<div class="small">{e(row.best_run_reason)}</div>' if png else (
            f'<span class="small">{e(row.note or "no sample grid logged")}</span>' if not row.reference else "")
        tds = [f"<td>{e(cells[0])}</td>", f"<td>{image}</td>", f"<td>{e(cells[1])}</td>"]
        tds += [f'<td class="num">{e(c)}</td>' for c in cells[2:3]] + [f"<td>{e(cells[3])}</td>"]
        tds += [f'<td class="num">{e(c)}</td>' for c in cells[4:]]
        parts.append(f'<tr class="{cls}">' + "".join(tds) + "</tr>")
    parts.append("</tbody></table>")
    parts.append("<h2>Plots</h2>")
    for fig_id, (title, png, caption) in plots(loaded).items():
        parts.append(f'<figure id="{fig_id}"><h3>{e(title)}</h3>')
        parts.append(_img(png, "", title) if png else "")
        parts.append(f"<figcaption>{e(caption)}</figcaption></figure>")
    parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in footnotes(board)) + "</ul>")
    if board.invalid_jobs:
        parts.append("<h2>Jobs that did not run</h2><ul>" + "".join(
            f"<li>job #{e(str(j.get('num')))}: <code>{e(' '.join(j.get('overrides', [])))}</code>: {e(str(j.get('error')))}</li>"
            for j in board.invalid_jobs) + "</ul>")
    parts.append(f"<h2>Runs</h2><table><thead><tr><th>configuration</th><th>seed</th><th>status</th><th>{e(board.metric)}</th><th>run</th><th>note</th></tr></thead><tbody>")
    for row in board.rows:
        for run in row.runs:
            value = run.metrics.get(board.metric)
            parts.append(
                f"<tr><td>{e(config_label(board, row))}</td><td>{e(run.seed)}</td><td>{e(run.status)}{' (diverged)' if run.diverged else ''}</td>"
                f'<td class="num">{e(fmt(value) if _finite(value) else "–")}</td><td><code>{e(run.run_id)}</code></td>'
                f'<td class="small">{e(run.error.splitlines()[0][:200] if run.error else "")}</td></tr>'
            )
    parts.append("</tbody></table></body></html>")
    return "\n".join(parts) + "\n"


def _code(text: str) -> str:
    """Markdown-style `code` spans of an already escaped line as <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", text)


# --------------------------------------------------------------------------- writing and the CLI


def write(loaded: Loaded, out: Path) -> dict[str, Path]:
    """Write the three report files into ``out``; returns them by kind."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"md": out / "leaderboard.md", "csv": out / "leaderboard.csv", "html": out / "leaderboard.html"}
    files["md"].write_text(to_markdown(loaded.board), encoding="utf-8")
    files["csv"].write_text(to_csv(loaded.board), encoding="utf-8")
    files["html"].write_text(to_html(loaded), encoding="utf-8")
    return files


USAGE = """usage: python -m ganbench.report [key=value ...]
  experiment=NAME        MLflow experiment (default: ganbench)
  tracking.uri=URI       tracking store (default: sqlite:///mlflow.db)
  parent=ID|latest|none  the sweep's parent run; latest: the newest sweep (default); none: every run of the experiment
  metric=NAME            rank by this metric (default: fid_clf; lower is better, gen_accuracy etc. higher)
  direction=auto|min|max whether lower (min) or higher (max) ranks first (default: auto, by the metric's name)
  metrics=A,B,...        metric columns (default: every evaluation metric logged, else d_loss,g_loss)
  out=DIR                output folder (default: reports/<sweep run id> or reports/<experiment>)
  log=true|false         log the report to the sweep's parent run (default: true)"""

KEYS = {"experiment", "tracking.uri", "uri", "parent", "sweep", "metric", "direction", "metrics", "out", "log"}


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            raise ReportError(f"argument {arg!r} is not one of {', '.join(sorted(KEYS))} as key=value (see --help)")
        args[{"uri": "tracking.uri", "sweep": "parent"}.get(key, key)] = value
    if args.get("log", "true") not in ("true", "false"):
        raise ReportError(f"log={args['log']!r}: choose true or false")
    return args


def main(argv: Sequence[str] | None = None, echo: Callable[[str], None] = print) -> int:
    """``python -m ganbench.report``: write the leaderboard and log it to the sweep's parent run."""
    from ganbench.tracking import TrackingError, check_reachable, make_client

    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per sample grid otherwise
    if any(a in ("-h", "--help") for a in argv):
        echo(USAGE)
        return 0
    try:
        args = parse_args(argv)
        uri = args.get("tracking.uri", "sqlite:///mlflow.db")
        experiment = args.get("experiment", "ganbench")
        metrics = [m for m in args["metrics"].split(",") if m] if "metrics" in args else None
        check_reachable(uri)
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).expanduser().exists():
            raise ReportError(f"no MLflow store at {uri}; run a sweep first or pass tracking.uri=")
        client = make_client(uri)
        loaded = load(client, experiment, args.get("parent", "latest"), args.get("metric", "fid_clf"),
                      args.get("direction", "auto"), metrics)
        board = loaded.board
        name = board.parent.run_id if board.parent else re.sub(r"[^\w.-]", "_", experiment)
        out = Path(args.get("out", f"reports/{name}"))
        files = write(loaded, out)
        if board.parent is not None and args.get("log", "true") == "true":
            for path in files.values():
                client.log_artifact(board.parent.run_id, str(path), "report")
    except (ReportError, TrackingError) as exc:
        print(f"ganbench.report: error: {exc}", file=sys.stderr)
        return 2
    for warning in board.warnings:
        print(f"ganbench.report: warning: {warning}", file=sys.stderr)
    echo(verdict(board))
    echo(f"report: {files['html'].resolve()} (also leaderboard.md, leaderboard.csv)")
    if board.parent is not None and args.get("log", "true") == "true":
        echo(f"logged to the sweep's parent run {board.parent.run_id} under report/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
