"""The reproduction's table: ``REPRODUCTION.md`` and a self-contained ``reproduction.html`` with each system's final
sample grid (Jinja2, autoescaped, images inline), both written atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from ganbench.files import atomic_write_text
from ganbench.report.render import data_uri
from ganbench.reproduce.claims import CLAIMS, NOT_CHECKABLE, NOT_REPRODUCED, REPRODUCED, S3, S3_CLASS_TABLE, Verdict
from ganbench.reproduce.evidence import mean
from ganbench.reproduce.runs import Reproduction
from ganbench.reproduce.systems import SEEDS, SYSTEMS, System

FILES = {"md": "REPRODUCTION.md", "html": "reproduction.html"}
ENVIRONMENT = Environment(loader=PackageLoader("ganbench.reproduce", "templates"), autoescape=True,
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass
class SystemView:
    """One system's section: its budget against the report's, its seeds, deviations, claims and sample grid."""

    system: System
    budget: str
    share: str  # the budget in a few words, for the summary table: "3,000 updates, 20% of the report's"
    seeds: str
    claims: list[tuple[str, str, str, Verdict]] = field(default_factory=list)  # (key, text, reported, verdict)
    grid: str | None = None  # data: URI


def budget_text(system: System, steps: set[str]) -> str:
    """``1,000 generator updates, 20% of the report's 5,000`` (or its length in words when it gives no number)."""
    if not steps:
        return "not run yet"
    ours = ", ".join(f"{int(float(s)):,}" for s in sorted(steps, key=float))
    if system.report_updates:
        share = 100 * max(float(s) for s in steps) / system.report_updates
        return f"{ours} generator updates, {share:.2g}% of the report's {system.report_updates:,} ({system.report_length})"
    return f"{ours} generator updates; the report: {system.report_length}"


def budget_share(system: System, steps: set[str]) -> str:
    """The summary table's budget cell: our longest run's updates and their share of the report's."""
    if not steps:
        return "not run"
    most = max(float(s) for s in steps)
    if not system.report_updates:
        return f"{int(most):,} updates"
    return f"{int(most):,} updates, {100 * most / system.report_updates:.2g}% of the report's"


def views(rep: Reproduction, verdicts: dict[str, Verdict]) -> list[SystemView]:
    out = []
    for system in SYSTEMS:
        runs = [r for r in rep.runs if r.tags.get("preset") == system.preset]
        finished = [r for r in runs if r.status == "FINISHED"]
        steps = {r.params.get("train.total_steps", "") for r in runs} - {""}
        seeds = f"{len(finished)} finished of {len(runs)} run(s)" + (f" (seeds {', '.join(r.seed for r in finished)})" if finished else "")
        view = SystemView(system, budget_text(system, steps), budget_share(system, steps), seeds)
        view.claims = [(k, c.text, c.reported, verdicts[k]) for k, c in CLAIMS.items() if c.systems[0] == system.preset]
        png = rep.grids.get(system.preset)
        view.grid = data_uri(png) if png else None
        out.append(view)
    return out


def class_table(rep: Reproduction) -> list[tuple[int, str, str]]:
    """Seed S3's per-class precision / recall / F1 beside ours (means over seeds), as percentages."""
    s3 = rep.systems.get(S3)
    rows = []
    for c, (p, r, f, _support) in S3_CLASS_TABLE.items():
        ours = [s3.values(f"gen_{m}_{c}") if s3 else [] for m in ("precision", "recall", "f1")]
        mine = " / ".join(f"{100 * mean(v):.0f}" if v else "–" for v in ours)
        rows.append((c, f"{p} / {r} / {f}", mine))
    return rows


def claim_budget(compared: list[SystemView]) -> str:
    """The summary table's budget cell for a claim: every compared system's, when they differ (S0a's 1,000 updates
    against S0d's 400), since a comparison holds only at the budgets behind both sides."""
    shares = {view.share for view in compared}
    if len(shares) == 1:
        return compared[0].share
    return "; ".join(f"{view.system.key[0].upper()}{view.system.key[1:]}: {view.share}" for view in compared)


def counts(verdicts: dict[str, Verdict]) -> str:
    n = {s: sum(v.status == s for v in verdicts.values()) for s in (REPRODUCED, NOT_REPRODUCED, NOT_CHECKABLE)}
    return f"{n[REPRODUCED]} reproduced, {n[NOT_REPRODUCED]} not reproduced, {n[NOT_CHECKABLE]} not checkable of {len(verdicts)} claims"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rep: Reproduction, verdicts: dict[str, Verdict], command: str) -> str:
    lines = [
        "# Reproducing the seed reports",
        "",
        f"Written by `python -m ganbench.reproduce` from the MLflow store of its sweep. Command: `{command}`.",
        f"Sweep: parent run `{rep.parent.run_id if rep.parent else '–'}`"
        + (f" ({rep.parent.status})" if rep.parent else "") + f". {counts(verdicts)}.",
        "Every figure is the mean ± 95% t half-width over the seeds that finished (n). Comparisons between systems use",
        "Welch's t-test at 0.05. Where each metric was measured (samples, reference split, classifier): the `measured.*`",
        "tags of each run; the S0 systems are all scored at 28 px by one Sign Digits classifier (`eval.image_size=28`).",
        "The HTML version (`reproduction.html`) has each system's final sample grid. A verdict holds at the budget beside",
        "it: a claim a report made after far more updates is judged on a short run here, and its section says how short.",
        "",
        "| system | claim | report | ours | budget | verdict | why |",
        "|---|---|---|---|---|---|---|",
    ]
    all_views = views(rep, verdicts)
    by_preset = {view.system.preset: view for view in all_views}
    for view in all_views:
        for key, text, reported, v in view.claims:
            budget = claim_budget([by_preset[p] for p in CLAIMS[key].systems])
            lines.append(f"| {view.system.title} | {cell(text)} | {cell(reported)} | {cell(v.ours)} | {budget} | **{v.status}** | {cell(v.reason)} |")
    for view in all_views:
        s = view.system
        lines += ["", f"## {s.title} (`{s.preset}`)", "",
                  f"- Report: `{SEEDS}{s.report}`; its length: {s.report_length}.",
                  f"- Budget here: {view.budget}.", f"- Runs: {view.seeds}.", "- Deviations from the report:"]
        lines += [f"  - {d}" for d in s.deviations]
        if s.preset == S3:
            lines += ["", "Per-class precision / recall / F1 (%), the report's 1,000 digits beside ours:", "",
                      "| class | report | ours |", "|---|---|---|"]
            lines += [f"| {c} | {theirs} | {ours} |" for c, theirs, ours in class_table(rep)]
    return "\n".join(lines) + "\n"


def html(rep: Reproduction, verdicts: dict[str, Verdict], command: str) -> str:
    template = ENVIRONMENT.get_template("reproduction.html.j2")
    return template.render(views=views(rep, verdicts), counts=counts(verdicts), command=command, seeds_dir=SEEDS,
                           parent=rep.parent, class_table=class_table(rep), s3=S3)


def write(rep: Reproduction, verdicts: dict[str, Verdict], out: Path, command: str) -> dict[str, Path]:
    """Both files under ``out``, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / name for k, name in FILES.items()}
    atomic_write_text(paths["md"], markdown(rep, verdicts, command))
    atomic_write_text(paths["html"], html(rep, verdicts, command))
    return paths
