"""The report files: ``leaderboard.md``, ``leaderboard.csv`` and a self-contained ``leaderboard.html`` (from the
Jinja2 template ``templates/leaderboard.html.j2``, autoescaped, images inline), each written atomically."""

from __future__ import annotations

import base64
import csv
import io
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from ganbench.files import atomic_write_text
from ganbench.report.figures import plots
from ganbench.report.leaderboard import Leaderboard, Loaded
from ganbench.report.stats import finite
from ganbench.report.text import (
    cell_parts,
    config_label,
    context_lines,
    fmt,
    footnotes,
    measured_groups,
    measured_lines,
    measured_text,
    run_note,
    status_text,
    table,
    verdict,
)

HTML_TEMPLATE = "leaderboard.html.j2"
FILES = {"md": "leaderboard.md", "csv": "leaderboard.csv", "html": "leaderboard.html"}


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, so the page needs no other file and no network."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def code_spans(text: str) -> Markup:
    """Escape ``text``, then show its Markdown-style `code` spans as <code>."""
    return Markup(re.sub(r"`([^`]*)`", r"<code>\1</code>", str(escape(text))))


def breakable(text: str, after: str = "+,") -> Markup:
    """Escape ``text`` and let a long name wrap after any of the characters ``after`` (``spectral_norm+<wbr>ttur``)."""
    return Markup(re.sub(f"([{re.escape(after)}])", r"\1<wbr>", str(escape(text))))


ENVIRONMENT = Environment(
    loader=PackageLoader("ganbench.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENVIRONMENT.filters["data_uri"] = data_uri
ENVIRONMENT.filters["code_spans"] = code_spans
ENVIRONMENT.filters["breakable"] = breakable


def to_markdown(board: Leaderboard) -> str:
    header, body = table(board)
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    out = ["# ganbench leaderboard", "", *context_lines(board), "", f"**{verdict(board)}**", ""]
    if board.warnings:
        out += ["## Warnings", "", *[f"- {w}" for w in board.warnings], ""]
    out += ["## Leaderboard", "", "What was measured, once for all rows (a value in braces: the runs differ, see Warnings):", ""]
    out += [*[f"- {esc(m)}" for m in measured_lines(board)], ""]
    out += ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
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
            out.append(f"| {esc(config_label(board, row))} | {run.seed} | {status_text(run)} | "
                       f"{fmt(value) if finite(value) else '–'} | `{run.run_id}` | {esc(run_note(run, 120))} |")
    return "\n".join(out) + "\n"


def to_csv(board: Leaderboard) -> str:
    """One line per configuration (reference rows first), every number unrounded."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head = ["rank", *board.columns, "reference", "runs", "finished", "failed", "diverged", "killed", "running", "seeds"]
    for m in board.metrics:
        head += [f"{m}_n", f"{m}_mean", f"{m}_std", f"{m}_ci95_low", f"{m}_ci95_high", f"{m}_measured_on"]
    head += ["p_vs_best", "p_vs_best_holm", "differs_from_best", "best_seed", "best_run_id"]
    writer.writerow(head)

    def num(v: float | None) -> str:
        return "" if v is None else repr(float(v))

    # What each number was measured on (sample count, reference, features, BatchNorm mode), on every line, so that
    # a row copied out of the file still says it.
    measured = {m: measured_text(board, m) for m in board.metrics}

    for row in board.display_rows():
        key = list(row.key) + [""] * (len(board.columns) - len(row.key)) if not row.reference else [""] * len(board.columns)
        line = ["ref" if row.reference else (row.rank if row.rank is not None else ""), *key,
                row.key[0] if row.reference else "", len(row.runs), row.count("FINISHED"), row.count("FAILED"),
                row.diverged, row.count("KILLED"), row.count("RUNNING"), ";".join(row.seeds)]
        for m in board.metrics:
            s = row.stats[m]
            line += [s.n, num(s.mean), num(s.std), num(s.low), num(s.high), measured[m]]
        differs = "" if row.differs is None else str(row.differs).lower()
        line += [num(row.p_value), num(row.p_adjusted), differs,
                 row.best_run.seed if row.best_run else "", row.best_run.run_id if row.best_run else ""]
        writer.writerow(line)
    return buf.getvalue()


def html_context(loaded: Loaded) -> dict[str, Any]:
    """What the HTML template shows, as plain values (the template escapes every one)."""
    board = loaded.board
    _, body = table(board)
    rows = []
    for row, cells in zip(board.display_rows(), body):
        png = loaded.samples.get(row.best_run.run_id) if row.best_run else None
        row_n = None if row.reference else row.stats[board.metric].n
        rows.append({
            "cls": "ref" if row.reference else ("best" if board.is_best(row) else ("unranked" if row.rank is None else "")),
            "rank": cells[0],
            "label": cells[1],
            "n": cells[2],
            "runs": cells[3],
            "metrics": [cell_parts(row.stats[m], row_n) for m in board.metrics],
            "differs": cells[-1],
            "reference": row.reference,
            "png": png,
            "alt": f"samples of {config_label(board, row)}",
            "seed": f"seed {row.best_run.seed}" if png and row.best_run else "",
            "caption": row.best_run_reason if png else (row.note or "no sample grid logged"),
        })
    runs = []
    for row in board.rows:
        for run in row.runs:
            value = run.metrics.get(board.metric)
            runs.append({"label": config_label(board, row), "seed": run.seed, "status": status_text(run),
                         "value": fmt(value) if finite(value) else "–", "run_id": run.run_id, "note": run_note(run, 200)})
    jobs = [{"num": str(j.get("num")), "overrides": " ".join(j.get("overrides", [])), "error": str(j.get("error"))}
            for j in board.invalid_jobs]
    figures = [{"id": fig_id, "title": title, "png": png, "caption": caption} for fig_id, (title, png, caption) in plots(loaded).items()]
    return {
        "context": context_lines(board),
        "verdict": verdict(board),
        "warnings": board.warnings,
        "measured": [{"metrics": names, "but": but, "text": text} for names, but, text in measured_groups(board)],
        "metrics": [{"name": m, "arrow": board.arrow(m), "ranked_by": m == board.metric,
                     "title": f"{m}: {measured_text(board, m)}"} for m in board.metrics],
        "rows": rows,
        "figures": figures,
        "notes": footnotes(board),
        "jobs": jobs,
        "metric": board.metric,
        "runs": runs,
    }


def to_html(loaded: Loaded) -> str:
    return ENVIRONMENT.get_template(HTML_TEMPLATE).render(html_context(loaded))


def write(loaded: Loaded, out: Path) -> dict[str, Path]:
    """Write the three report files into ``out``, each whole or not at all; returns them by kind."""
    out = Path(out)
    files = {kind: out / name for kind, name in FILES.items()}
    atomic_write_text(files["md"], to_markdown(loaded.board))
    atomic_write_text(files["csv"], to_csv(loaded.board))
    atomic_write_text(files["html"], to_html(loaded))
    return files
