"""What the EMA of G buys on Hoda at the hoda_benchmark budget, with its BatchNorm statistics handled two ways.

Trains the `hoda/concat_ema` row of `sweep=hoda_benchmark` (seeds 0, 1, 2; 1,200 generator steps at batch 64) into
its own store, then scores four generators from each run's final checkpoint, with the sweep's evaluation (10,000
samples, the Hoda classifier's features, train split as reference):

* `raw, eval`: G's own trained weights with its running BatchNorm statistics: the `hoda/concat` row's generator,
  since EMA does not touch training (its scores reproduce that row of benchmarks/HODA.md);
* `raw, standing`: the same weights, BatchNorm statistics re-estimated from fresh samples (`eval.bn_mode=standing`);
* `ema, eval`: the averaged weights with the statistics `stabilize=ema` copies from G (the `hoda/concat_ema` row);
* `ema, standing`: the averaged weights with statistics re-estimated for them (StudioGAN's standing statistics).

Run: .venv/bin/python benchmarks/hoda_ema.py [--store sqlite:///hoda_ema.db] [--seeds 0,1,2]
The training is resumable (finished runs are not retrained); figures come last, as a Markdown table.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace

import torch
from hydra import compose, initialize_config_module
from scipy import stats

from ganbench.errors import run_script
from ganbench.device import resolve_device, set_threads
from ganbench.evaluate import EvalSettings
from ganbench.evaluate.evaluator import get_evaluator
from ganbench.evaluate.rescore import load_generator
from ganbench.tracking import make_client
from ganbench.tracking.layout import CHECKPOINT_ARTIFACT, CKPT_GENERATOR_RAW, ROLE_TAG, NOT_TRAINING
from ganbench.train.checkpoint import load_checkpoint

ROW = "hoda/concat_ema"
SWEEP = ("sweep=hoda_benchmark", f"experiment={ROW}")
METRICS = ("fid_clf", "gen_accuracy", "precision_clf", "recall_clf", "intra_fid_clf")
VARIANTS = (("raw", "eval"), ("raw", "standing"), ("ema", "eval"), ("ema", "standing"))


def train(store: str, seeds: str) -> None:
    """The sweep's EMA row, one run a seed; finished runs are skipped, so a re-run continues."""
    subprocess.run([sys.executable, "-m", "ganbench", "-m", *SWEEP, f"seed={seeds}", f"tracking.uri={store}"], check=True)


def finished_runs(client, seeds: list[int]) -> dict[int, str]:
    """Run id of each seed's finished training run of the EMA row."""
    exp = client.get_experiment_by_name("hoda_benchmark")
    runs = client.search_runs([exp.experiment_id], f"attributes.status = 'FINISHED' and tags.preset = '{ROW}'")
    found = {int(r.data.params["seed"]): r.info.run_id for r in runs if r.data.tags.get(ROLE_TAG) not in NOT_TRAINING}
    missing = [s for s in seeds if s not in found]
    if missing:
        raise SystemExit(f"no finished {ROW} run for seeds {missing}; re-run to train them")
    return {s: found[s] for s in seeds}


def generators(client, run_id: str, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module, dict]:
    """(raw G, EMA G, run config) from the run's final checkpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = load_checkpoint(client.download_artifacts(run_id, CHECKPOINT_ARTIFACT, tmp))
    ema, run_cfg = load_generator(checkpoint, device)
    raw = copy.deepcopy(ema)
    raw.load_state_dict(checkpoint[CKPT_GENERATOR_RAW])
    return raw.eval(), ema, run_cfg


def mean_ci(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4g}"
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return f"{statistics.mean(values):.4g} ± {half:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="sqlite:///hoda_ema.db", help="MLflow tracking URI of the runs")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    train(args.store, args.seeds)

    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*SWEEP, f"tracking.uri={args.store}"])
    set_threads(cfg.train.num_threads)
    device = resolve_device(cfg.device)
    base = EvalSettings.from_config(cfg)
    client = make_client(args.store)
    scores: dict[tuple[str, str], dict[str, list[float]]] = {v: {m: [] for m in METRICS} for v in VARIANTS}
    for seed, run_id in finished_runs(client, seeds).items():
        raw, ema, run_cfg = generators(client, run_id, device)
        for weights, bn_mode in VARIANTS:
            evaluator = get_evaluator(replace(base, bn_mode=bn_mode), device)
            result = evaluator.score_generator(raw if weights == "raw" else ema, True, int(run_cfg["noise"]["dim"]), run_cfg["noise"]["name"])
            for m in METRICS:
                scores[(weights, bn_mode)][m].append(float(result.metrics[m]))
            print(f"seed {seed} ({run_id[:8]}) {weights:3s} {bn_mode:8s} " + "  ".join(f"{m} {result.metrics[m]:.4g}" for m in METRICS), flush=True)

    print(f"\n{ROW} (EMA decay {cfg.stabilize.ema.decay}), seeds {args.seeds}; {base.num_samples:,} samples per score, standing statistics over "
          f"{base.standing_steps} batches of {get_evaluator(base, device).batch_size}; Welch's p against `raw, eval`\n")
    print("| generator | BatchNorm statistics | " + " | ".join(f"`{m}`" for m in METRICS) + " | fid_clf p vs raw, eval |")
    print("|---" * (len(METRICS) + 3) + "|")
    reference = scores[("raw", "eval")]["fid_clf"]
    for (weights, bn_mode), values in scores.items():
        p = "–" if (weights, bn_mode) == ("raw", "eval") else f"{stats.ttest_ind(values['fid_clf'], reference, equal_var=False).pvalue:.3f}"
        cells = " | ".join(mean_ci(values[m]) for m in METRICS)
        label = {"eval": "running (copied from G)" if weights == "ema" else "running", "standing": "standing (re-estimated)"}[bn_mode]
        print(f"| {weights} | {label} | {cells} | {p} |")


if __name__ == "__main__":
    run_script(main, "hoda_ema.py")
