"""Reading the reproduction's runs back from MLflow: one ``SystemRuns`` per preset, with the histories claims need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ganbench.report.records import RunRecord, natural_key, read_runs, sample_grids
from ganbench.report.settings import ReportSettings
from ganbench.reproduce.evidence import SeedRun, SystemRuns

HISTORY_KEYS = ("epoch", "d_loss", "g_loss", "d_real", "d_fake")  # per-step curves the S1 and S4 claims read


@dataclass
class Reproduction:
    """The systems' finished runs, every run of the sweep (finished or not), its parent, and the final sample grids."""

    systems: dict[str, SystemRuns]
    runs: list[RunRecord]
    parent: RunRecord | None
    grids: dict[str, bytes]  # preset -> the final sample grid of its lowest finished seed


def seed_run(client: Any, run: RunRecord, keys: Sequence[str] = HISTORY_KEYS) -> SeedRun:
    histories = {k: sorted((m.step, m.value) for m in client.get_metric_history(run.run_id, k)) for k in keys if k in run.metrics}
    return SeedRun(run.seed, run.metrics, run.tags, histories)


def load(client: Any, experiment: str, parent: str = "latest") -> Reproduction:
    """The newest reproduction sweep (or ``parent``) of ``experiment``, grouped by the preset tag."""
    found = read_runs(client, ReportSettings(experiment=experiment, tracking_uri=client.tracking_uri, parent=parent))
    by_preset: dict[str, list[RunRecord]] = {}
    for run in sorted(found.runs, key=lambda r: natural_key(r.seed)):
        by_preset.setdefault(run.tags.get("preset", "?"), []).append(run)
    systems, firsts = {}, {}
    for preset, runs in by_preset.items():
        finished = [r for r in runs if r.status == "FINISHED"]
        unfinished = tuple(f"seed {r.seed}: {'diverged' if r.diverged else r.status.lower()}" + (f" ({r.error})" if r.error else "")
                           for r in runs if r.status != "FINISHED")
        systems[preset] = SystemRuns(preset, tuple(seed_run(client, r) for r in finished), unfinished)
        if finished:
            firsts[preset] = finished[0].run_id
    grids = sample_grids(client, firsts.values())
    return Reproduction(systems, found.runs, found.parent, {p: grids[rid] for p, rid in firsts.items() if rid in grids})
