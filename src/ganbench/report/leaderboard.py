"""The leaderboard: runs grouped into configurations (``Row``), aggregated over seeds, ranked per dataset by the
chosen metric and tested against the best row (``build``); ``load`` reads it all from MLflow (``Loaded``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ganbench.report.columns import EVAL_METRICS, LOSS_METRICS, describe_metrics, eval_settings, higher_is_better
from ganbench.report.records import RunRecord, metric_histories, natural_key, read_runs, sample_grids
from ganbench.report.settings import ReportError, ReportSettings, check_direction
from ganbench.report.stats import ALPHA, Stat, finite, holm, summarize, welch_p
from ganbench.tracking.layout import GRID_AXES, HELDOUT_SEEN_TAG, PRESET_TAG

STATUSES = ("FINISHED", "FAILED", "KILLED", "RUNNING")
TOP_CURVES = 10  # loss / quality curves for the best this-many rows (every row is in the table)
DATASET = GRID_AXES.index("dataset")


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
        return sorted({r.seed for r in self.runs if r.status == "FINISHED"}, key=natural_key)


def dataset_of(row: Row) -> str:
    return row.runs[0].tags.get("dataset", "?") if row.reference else row.key[DATASET]


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


def extra_axes(runs: Sequence[RunRecord]) -> list[str]:
    """Keys besides the grid axes and the seed whose value differs between the runs' job overrides."""
    parsed = [r.overrides for r in runs]
    keys = sorted({k for p in parsed for k in p} - set(GRID_AXES) - {"seed"})
    return [k for k in keys if len({p.get(k, "") for p in parsed}) > 1]


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
    check_direction(direction)
    known = higher_is_better(metric)
    assumed = direction == "auto" and known is None
    lower = {"min": True, "max": False}.get(direction, not known)
    runs = sorted(runs, key=lambda r: (r.start_time, r.run_id))
    warnings: list[str] = []

    # A seed preset (tag preset, from experiment=<preset>) is part of what a configuration is, and so is training
    # on the held-out split too (tag data.heldout_seen): such runs never share a row with those that did not.
    tagged = [t for t in (PRESET_TAG, HELDOUT_SEEN_TAG) if any(t in r.tags for r in runs)]
    extras = [k for k in extra_axes(runs) if not (PRESET_TAG in tagged and k == "experiment")]
    columns = [*GRID_AXES, *tagged, *extras]

    def key_of(run: RunRecord) -> tuple[str, ...]:
        overrides = run.overrides
        return (tuple(run.tags.get(a, "?") for a in GRID_AXES) + tuple(run.tags.get(t, "") for t in tagged)
                + tuple(overrides.get(k, "") for k in extras))

    groups: dict[tuple[str, ...], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(key_of(run), []).append(run)

    finished = [r for r in runs if r.status == "FINISHED"]
    if metrics is None:
        present = {k for r in finished for k in r.metrics}
        metrics = [m for m in EVAL_METRICS if m in present] or [m for m in LOSS_METRICS if m in present]
    metrics = [metric, *[m for m in metrics if m != metric]]

    rows = [Row(key, sorted(group, key=lambda r: (natural_key(r.seed), r.run_id))) for key, group in groups.items()]
    for row in rows:
        done = [r for r in row.runs if r.status == "FINISHED"]
        for m in metrics:
            row.stats[m] = summarize(r.metrics[m] for r in done if finite(r.metrics.get(m)))
        scored = [r for r in done if finite(r.metrics.get(metric))]
        if scored:
            best_value = (min if lower else max)(r.metrics[metric] for r in scored)
            row.best_run = min((r for r in scored if r.metrics[metric] == best_value), key=lambda r: natural_key(r.seed))
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
    missing = [r for r in finished if not finite(r.metrics.get(metric))]
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
    seen = [r for r in runs if r.tags.get(HELDOUT_SEEN_TAG) == "true"]
    if seen:
        warnings.append(f"{len(seen)} run(s) trained on the held-out split too (dataset.train_with_test=true): their held-out "
                        f"metrics (CAS's test set, memorisation's held-out images) are images the GAN saw: {_names(seen)}")
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
    shared_eval = eval_settings([r for r in finished if finite(r.metrics.get(metric))], warnings)
    ref_rows = []
    for ref in sorted(references, key=lambda r: (r.tags.get("dataset", ""), r.run_id)):
        row = Row((f"real data ({ref.tags.get('dataset', '?')})",), [ref], reference=True)
        row.stats = {m: summarize([ref.metrics[m]] if finite(ref.metrics.get(m)) else []) for m in metrics}
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


@dataclass
class Loaded:
    """A leaderboard and what the writers fetch from MLflow for it (images and curves)."""

    board: Leaderboard
    samples: dict[str, bytes]  # run id -> last sample grid PNG
    curves: dict[str, dict[str, list[tuple[int, float]]]]  # run id -> metric -> [(step, value)]


def unknown_metric_problem(metric: str, runs: Sequence[RunRecord]) -> None:
    """Refuse ranking by a metric no run logged and ganbench does not know (a typo); one known but not yet logged
    (``cas`` before any CAS run) still gives the table, every row unranked, with the reason."""
    if metric in (*EVAL_METRICS, *LOSS_METRICS, "parzen_ll") or any(metric in r.metrics for r in runs):
        return
    logged = sorted({m for r in runs for m in r.metrics if m in EVAL_METRICS or m == "parzen_ll"})
    raise ReportError(f"metric={metric!r} is not a metric any of these runs logged; choose one of {', '.join(logged) or 'fid_clf'}")


def load(client: Any, settings: ReportSettings, alpha: float = ALPHA) -> Loaded:
    """Read the runs of one sweep (or of the whole experiment), build their leaderboard and fetch its images and curves."""
    found = read_runs(client, settings)
    unknown_metric_problem(settings.metric, found.runs)
    board = build(
        found.runs, settings.metric, experiment=found.experiment, tracking_uri=client.tracking_uri,
        direction=settings.direction, metrics=settings.metrics, references=found.references, parent=found.parent,
        invalid_jobs=found.invalid_jobs, alpha=alpha,
    )
    parent = found.parent
    if parent is not None and parent.status == "RUNNING":
        board.warnings.insert(0, f"the sweep (parent run {parent.run_id[:8]}) is still RUNNING: jobs may be missing from this report")
    samples = sample_grids(client, [row.best_run.run_id for row in board.rows if row.best_run is not None])
    plotted = [run for row in (board.ranked or board.rows)[:TOP_CURVES] for run in row.runs]  # the rows plot_curves draws
    curves = metric_histories(client, plotted, ("d_loss", "g_loss", settings.metric))
    return Loaded(board, samples, curves)
