"""ganbench's own Hoda results: run ``sweep=hoda_benchmark``, then write its leaderboard and benchmarks/HODA.md.

Run: .venv/bin/python benchmarks/hoda_benchmark.py [--report-only] [override ...]
The sweep is resumable: after a kill, the same command continues it (finished jobs are not retrained).
Extra arguments are Hydra overrides for the sweep (e.g. tracking.uri=...); the report reads the same store.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from ganbench.errors import run_script
from ganbench.report.leaderboard import Leaderboard, Row, load
from ganbench.report.render import write
from ganbench.report.settings import ReportSettings
from ganbench.report.stats import finite, summarize, welch_p
from ganbench.report.text import cell, fmt, fmt_p, measured_lines
from ganbench.tracking import make_client

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "hoda"
EXPERIMENT = "hoda_benchmark"
COLUMNS = ("fid_clf", "gen_accuracy", "precision_clf", "recall_clf", "intra_fid_clf")
EFFECT_METRICS = ("fid_clf", "gen_accuracy", "recall_clf")

# Each question the benchmark answers: (row, the same configuration without the technique, what it changes).
EFFECTS = (
    ("hoda/projection", "hoda/concat", "projection D instead of label channels"),
    ("hoda/cbn", "hoda/concat", "conditional BatchNorm G + projection D instead of label channels"),
    ("hoda/acgan", "hoda/concat", "ACGAN class head instead of label channels"),
    ("hoda/concat_hinge", "hoda/concat", "hinge loss instead of BCE"),
    ("hoda/concat_sn", "hoda/concat", "spectral norm on D"),
    ("hoda/concat_ema", "hoda/concat", "EMA of G"),  # + the decay its runs logged (effects_table)
    ("hoda/concat_diffaug", "hoda/concat", "DiffAugment (translation + cutout)"),
    ("hoda/concat_r1", "hoda/concat", "R1 penalty (gamma 1)"),
    ("hoda/concat_lecam", "hoda/concat", "LeCam (weight 0.3)"),
    ("hoda/concat_bcr", "hoda/concat", "bCR (weights 10, 10)"),
    ("hoda/dcgan_sn", "hoda/dcgan", "spectral norm on an unconditional DCGAN's D"),
    ("hoda/sngan", "hoda/cbn", "SNGAN ResNet (width 32, hinge, Adam betas 0/0.9) instead of the DCGAN nets, both cBN + projection"),
)


def step_rates(presets: list[str], steps: int = 40) -> dict[str, float]:
    """Generator steps per second of each row's training step alone, measured one after another on an idle machine.

    The sweep's own train_seconds depend on whatever else ran beside it; these rates are the techniques' costs.
    """
    sys.path.insert(0, str(HERE))
    from train_speed import compose_cfg, step_rate  # benchmarks/train_speed.py

    torch.manual_seed(0)
    images, labels = torch.rand(4096, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (4096,))
    rates = {}
    for preset in presets:
        cfg = compose_cfg("sweep=hoda_benchmark", f"experiment={preset}")
        rates[preset] = step_rate(cfg, images, labels, cfg.train.batch_size, steps)
        print(f"{preset}: {rates[preset]:.2f} steps/s", flush=True)
    return rates


def run_sweep(overrides: list[str]) -> None:
    """The sweep itself, as a user would start it; a re-run continues it."""
    cmd = [sys.executable, "-m", "ganbench", "-m", "sweep=hoda_benchmark", *overrides]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def preset_of(row: Row) -> str:
    return row.runs[0].tags.get("preset", "?")


def stat_cell(row: Row, metric: str) -> str:
    stat = row.stats.get(metric) or summarize(r.metrics[metric] for r in row.runs if r.status == "FINISHED" and finite(r.metrics.get(metric)))
    return cell(stat) if stat.n else "–"


def main_table(board: Leaderboard, rates: dict[str, float]) -> list[str]:
    head = ["rank", "configuration", "seeds", *COLUMNS, "s per 1,200 steps (measured apart)", "differs from best (Holm-adjusted Welch p)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in board.display_rows():
        name = "real Hoda test digits" if row.reference else f"`{preset_of(row)}`"
        rank = "ref" if row.reference else str(row.rank or "–")
        if row.reference:
            differs = "–"
        elif board.is_best(row):
            differs = "best"
        else:
            differs = ("**yes**" if row.differs else "no") + f" (p={fmt_p(row.p_adjusted)})" if row.p_adjusted is not None else "not tested"
        lines.append("| " + " | ".join([rank, name, str(len(row.seeds) if not row.reference else 1),
                                        *(stat_cell(row, m) for m in COLUMNS), cost(rates, preset_of(row), row.reference), differs]) + " |")
    return lines


def cost(rates: dict[str, float], preset: str, reference: bool) -> str:
    return "–" if reference or preset not in rates else f"{1200 / rates[preset]:.0f}"


def effects_table(board: Leaderboard, rates: dict[str, float]) -> list[str]:
    by_preset = {preset_of(r): r for r in board.rows}
    head = ["technique", "row vs same without it", *(f"Δ {m} (p)" for m in EFFECT_METRICS), "time per step ×"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row_name, base_name, what in EFFECTS:
        row, base = by_preset.get(row_name), by_preset.get(base_name)
        if row is None or base is None:
            continue
        cells = []
        for m in EFFECT_METRICS:
            a = [r.metrics[m] for r in row.runs if r.status == "FINISHED" and finite(r.metrics.get(m))]
            b = [r.metrics[m] for r in base.runs if r.status == "FINISHED" and finite(r.metrics.get(m))]
            if not a or not b:
                cells.append("–")
                continue
            delta = sum(a) / len(a) - sum(b) / len(b)
            cells.append(f"{'+' if delta >= 0 else ''}{fmt(delta)} (p={fmt_p(welch_p(a, b))})")
        ratio = f"{rates[base_name] / rates[row_name]:.2f}" if row_name in rates and base_name in rates else "–"
        decays = sorted({r.params["stabilize.ema.decay"] for r in row.runs if "stabilize.ema.decay" in r.params})
        if decays:  # what the runs trained with, not what the preset file meant (a misplaced key once differed)
            what += f" (decay {', '.join(decays)})"
        lines.append(f"| {what} | `{row_name}` vs `{base_name}` | " + " | ".join(cells) + f" | {ratio} |")
    return lines


def write_markdown(loaded, command: str, rates: dict[str, float]) -> Path:
    board = loaded.board
    best = board.best
    lines = [
        "# ganbench's Hoda results",
        "",
        "Written by `benchmarks/hoda_benchmark.py` from the MLflow store of the sweep; the full leaderboard, with every",
        "metric, the sample grids and the curves, is [`hoda/leaderboard.html`](hoda/leaderboard.html) (also",
        "[`hoda/leaderboard.md`](hoda/leaderboard.md), [`hoda/leaderboard.csv`](hoda/leaderboard.csv)).",
        "",
        f"- **Command:** `{command}` (the sweep alone: `python -m ganbench -m sweep=hoda_benchmark`).",
        "- **Budget, the same for every configuration:** 1,200 generator steps at batch 64 (76,800 real images, 3.4",
        "  epochs of the 22,352-digit Hoda training split `RemainingSamples.cdb`), one D step per G step. A step budget,",
        "  not wall-clock, so that a score does not depend on how loaded the machine was; each technique's cost is the",
        "  `s per 1,200 steps` column (each row's step timed alone, one after another, so the rows compare; the",
        "  sweep's own `train_seconds` also count whatever else the machine ran). These are short runs: the numbers",
        "  rank techniques at this budget, not at convergence.",
        f"- **Seeds:** {', '.join(board.best.seeds) if best else '–'} per configuration (training seed; the evaluation seed is fixed at 0).",
        f"- **Machine:** {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, `device=cpu`.",
        "- **Shared settings:** Hoda 28x28 (the MNIST-style preprocessing), normal prior (dim 100), Adam(2e-4, 0.5, 0.999)",
        "  except the SNGAN row (its own 2e-4, 0, 0.9), BCE except where the row says hinge.",
        "",
        "## What was measured",
        "",
        *[f"- {line}" for line in measured_lines(board)],
        "- mean ± 95% CI half-width (Student t) over seeds; `differs from best`: Welch's t-test against the best row,",
        "  Holm-adjusted over the rows, at 0.05.",
        "",
        "## Leaderboard (ranked by `fid_clf`, lower is better)",
        "",
        *main_table(board, rates),
        "",
        "## What each technique changed",
        "",
        "Difference of the means (row minus the same configuration without the technique) and Welch's two-sided p",
        "(unadjusted) over the seeds; `time per step ×`: the row's step time over the baseline's (measured apart).",
        "",
        *effects_table(board, rates),
        "",
    ]
    if best is not None and best.best_run is not None and best.best_run.run_id in loaded.samples:
        grid = OUT_DIR / "best_samples.png"
        grid.write_bytes(loaded.samples[best.best_run.run_id])
        lines += ["## Samples of the best configuration", "",
                  f"`{preset_of(best)}`, {best.best_run_reason} (rows are classes 0-9 for conditional models):", "",
                  "![samples of the best seed](hoda/best_samples.png)", ""]
    # The hand-written reading of the committed run, kept beside its numbers, then the follow-up studies of its rows
    # (each with its own command and date): files of their own, so that a re-written report keeps them.
    for extra in ("READING.md", "FOLLOWUPS.md"):
        if (OUT_DIR / extra).exists():
            lines += [(OUT_DIR / extra).read_text()]
    path = HERE / "HODA.md"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-only", action="store_true", help="do not run the sweep; only write the report")
    parser.add_argument("--rates", action="store_true", help="also time each row's training step (a few minutes, idle machine)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the sweep (tracking.uri=... is read back)")
    args = parser.parse_args()
    if not args.report_only:
        run_sweep(args.overrides)
    uri = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("tracking.uri=")), "sqlite:///mlflow.db")
    settings = ReportSettings(experiment=EXPERIMENT, tracking_uri=uri, parent="latest", metric="fid_clf", out=OUT_DIR, log=False)
    loaded = load(make_client(uri), settings)
    write(loaded, OUT_DIR)
    rates = step_rates([preset_of(r) for r in loaded.board.rows]) if args.rates else {}
    flags = [f for f, on in (("--report-only", args.report_only), ("--rates", args.rates)) if on]
    command = " ".join(["python benchmarks/hoda_benchmark.py", *flags, *args.overrides])
    print(f"wrote {write_markdown(loaded, command, rates)} and {OUT_DIR}/leaderboard.html")


if __name__ == "__main__":
    run_script(main, "hoda_benchmark.py")
