"""The report's words and numbers as text: number formats, cells, labels, the verdict, context lines, the
table and the notes; Markdown, CSV, HTML and the figures all print through these."""

from __future__ import annotations

import math

from ganbench.errors import first_line
from ganbench.report.leaderboard import STATUSES, Leaderboard, Row, dataset_of
from ganbench.report.records import RunRecord
from ganbench.report.stats import ALPHA, TEST_NAME, TEST_NOTE, Stat
from ganbench.tracking.layout import GRID_AXES, SWEEP_OVERRIDES_TAG


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


def cell_parts(stat: Stat, row_n: int | None = None) -> tuple[str, str]:
    """A cell as (mean, ``± half-width`` (95% CI) and its own n when that differs from the row's seed count)."""
    if stat.mean is None:
        return "–", ""
    spread = "" if stat.half_width is None else f"± {fmt(stat.half_width)}"
    n = f"(n={stat.n})" if row_n is not None and stat.n != row_n else ""
    return fmt(stat.mean), " ".join(p for p in (spread, n) if p)


def cell(stat: Stat, row_n: int | None = None) -> str:
    """``mean ± half-width`` (95% CI), with its own n when that differs from the row's seed count."""
    return " ".join(p for p in cell_parts(stat, row_n) if p)


def config_label(board: Leaderboard, row: Row) -> str:
    if row.reference:
        return row.key[0]
    return " · ".join(f"{v}" if c in GRID_AXES else f"{c}={v}" for c, v in zip(board.columns, row.key) if v)


def short_label(board: Leaderboard, row: Row) -> str:
    """The configuration label cut to 60 characters (for figure axes and legends)."""
    label = config_label(board, row)
    return label if len(label) <= 60 else label[:57] + "..."


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


def status_text(run: RunRecord) -> str:
    return f"{run.status}{' (diverged)' if run.diverged else ''}"


def run_note(run: RunRecord, limit: int) -> str:
    """The first line of why the run failed, diverged or was killed; empty for a run that did not."""
    return first_line(run.error, limit) if run.error else ""


def metric_header(board: Leaderboard, metric: str) -> str:
    """The metric's name and which way is better; what it was measured on is said once, above the table."""
    arrow = board.arrow(metric)
    return f"{metric}{' ' + arrow if arrow else ''}"


def measured_text(board: Leaderboard, metric: str) -> str:
    """What ``metric`` was measured on (sample count, reference split and size, features), without its name."""
    lines = board.measured.get(metric) or [f"{metric}: {board.headers.get(metric, '?')}"]
    return "; ".join(line.removeprefix(f"{metric}: ") for line in lines)


def measured_groups(board: Leaderboard) -> list[tuple[list[str], list[str], str]]:
    """What the metrics were measured on, each fact once: ``(metrics, but, text)``, ``text`` one or more parts
    ("1,000 generated samples vs ...", "features: ...") that exactly ``metrics`` share; ``metrics`` empty means every
    metric (but those in ``but``, when naming the few without it is shorter). Facts every metric shares come first."""
    by_part: dict[str, list[str]] = {}
    for m in board.metrics:
        for part in dict.fromkeys(measured_text(board, m).split("; ")):
            by_part.setdefault(part, []).append(m)
    lines: dict[tuple[str, ...], list[str]] = {}
    for part, names in by_part.items():
        lines.setdefault(tuple(names), []).append(part)
    out = []
    for names, parts in lines.items():
        rest = [m for m in board.metrics if m not in names]
        shown = ([], rest) if len(board.metrics) > 1 and len(rest) < len(names) / 2 else (list(names), [])
        out.append((*shown, "; ".join(parts)))
    return sorted(out, key=lambda line: (bool(line[0]), len(line[1])))  # stable: else in the metrics' order


def measured_lines(board: Leaderboard) -> list[str]:
    """``measured_groups`` as Markdown list items."""
    def who(names: list[str], but: list[str]) -> str:
        code = lambda ms: ", ".join(f"`{m}`" for m in ms)  # noqa: E731
        return code(names) if names else "every metric" + (f" but {code(but)}" if but else "")
    return [f"{who(names, but)}: {text}" for names, but, text in measured_groups(board)]


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
        if p.tags.get(SWEEP_OVERRIDES_TAG):
            lines.append(f"Sweep overrides: `{p.tags[SWEEP_OVERRIDES_TAG]}`.")
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
    notes = [TEST_NOTE.format(alpha=ALPHA)]  # what each metric was measured on is above the table (measured_lines)
    if board.references:
        notes.append(
            "ref rows: the real-data reference run (tag reference=real): held-out real images scored exactly like "
            "generated samples, one run, so no interval; the floor (or ceiling) a generator can reach."
        )
    else:
        notes.append("No real-data reference run was found (tag reference=real): evaluation was off or has not run.")
    if board.eval_settings:
        notes.append(
            "Evaluation settings of the ranked runs (their eval.* config params; runs scored again later by "
            "ganbench.evaluate are left out here: that scoring's settings are in their measured.* tags, above): "
            + ", ".join(f"{k}={v}" for k, v in board.eval_settings.items())
        )
    return notes
