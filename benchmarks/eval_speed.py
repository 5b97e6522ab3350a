"""The evaluation stage's cost and the auxiliary classifier's quality on Hoda.

Trains (or finds in the cache) the default classifier and reports its training time and its accuracy
on 'Test 20000.cdb' (target >= 99.3%), then times a full evaluation of a conditional generator with
10,000 samples (target <= 30 s on 2 CPU cores): cold (real features and the real-data reference run
computed) and warm (what every later run pays). The generator is a freshly initialised cgan_conv: the
timing does not depend on how well it was trained.

The warm evaluation's per-phase timings are printed too (``phase_<name>_seconds``), among them what the k-NN
metrics add (density_coverage, memorization, mifid, and fid_inf with --fid-inf); --bn-mode times a BatchNorm mode.

Run: .venv/bin/python benchmarks/eval_speed.py [--fresh] [--num-samples 10000] [--threads 2] [--fid-inf] [--bn-mode eval] [OVERRIDE ...]
(--fresh trains the classifier into a temporary cache instead of reusing $GANBENCH_CACHE's; OVERRIDEs are Hydra
overrides of the evaluation, e.g. eval.memorization_train_limit=5000).
Figures come last as `name: value` lines.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from ganbench.errors import run_script
from ganbench.evaluate.classifier import get_classifier, load_splits
from ganbench.evaluate.settings import ClassifierSettings
from ganbench.models import build_models
from ganbench.tracking import make_client, mlflow_run


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="train the classifier anew in a temporary cache")
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is for 2 cores)")
    parser.add_argument("--dataset", default="hoda")
    parser.add_argument("--fid-inf", action="store_true", help="also time eval.fid_inf (FID extrapolated to infinite samples)")
    parser.add_argument("--bn-mode", default="eval", choices=("eval", "batch", "standing"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. eval.memorization_train_limit=5000")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s %(message)s")
    logging.getLogger("ganbench.evaluate").setLevel(logging.INFO)  # its per-phase timings
    torch.set_num_threads(args.threads)
    scratch = tempfile.TemporaryDirectory()
    if args.fresh:
        os.environ["GANBENCH_CACHE"] = str(Path(scratch.name) / "cache")

    from ganbench.evaluate import EvalSettings, evaluate_generator  # after GANBENCH_CACHE is settled

    overrides = [
        f"dataset={args.dataset}",
        "model=cgan_conv",
        f"eval.num_samples={args.num_samples}",
        f"tracking.uri=sqlite:///{Path(scratch.name) / 'mlflow.db'}",
        "tracking.experiment=eval-benchmark",
        f"eval.fid_inf={'true' if args.fid_inf else 'false'}",
        f"eval.bn_mode={args.bn_mode}",
        *args.overrides,
    ]
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    device = torch.device("cpu")

    # 1. The classifier: trained now (timed by its own meta) or found in the cache.
    train, test = load_splits(OmegaConf.to_container(cfg.dataset), cfg.data.root, cfg.eval.heldout_split)
    started = time.perf_counter()
    loaded = get_classifier(train, test, ClassifierSettings.from_config(cfg.eval.classifier), device)
    trained_now = time.perf_counter() - started > 5
    train_seconds = float(loaded.meta.get("train_seconds", float("nan")))

    # 2. A full evaluation: cold (real features + reference run), then warm (the per-run cost).
    generator, _ = build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, cfg.dataset.image_size, train.num_classes)
    client = make_client(cfg.tracking.uri)
    timings, cpu = [], []
    from ganbench.evaluate.evaluator import get_evaluator

    for attempt in ("cold", "warm"):
        with mlflow_run(client, cfg.tracking.experiment, f"eval-speed-{attempt}", {"benchmark": "eval_speed"}) as logger:
            started, cpu_started = time.perf_counter(), cpu_seconds()
            metrics = evaluate_generator(EvalSettings.from_config(cfg), generator, True, train.num_classes, device, logger, step=0)
            timings.append(time.perf_counter() - started)
            cpu.append(cpu_seconds() - cpu_started)
    # The warm run's phases: score() keeps them on its Scores, logged in the run's metrics.json; re-measure them here.
    evaluator = get_evaluator(EvalSettings.from_config(cfg), device)
    started = time.perf_counter()
    phases = evaluator.score_generator(generator, True, cfg.noise.dim, cfg.noise.name).timings
    phases_total = time.perf_counter() - started
    reference = client.search_runs([client.get_experiment_by_name(cfg.tracking.experiment).experiment_id], "tags.reference = 'real'")[0]

    print()
    # Other processes on the machine slow every figure down: the load average says how busy it was.
    print(f"platform: {platform.platform()}, torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"classifier: {loaded.path} ({'trained now' if trained_now else 'from cache'}; {loaded.meta.get('train_images')} train images)")
    print("real-data reference (held-out vs train): " + "  ".join(f"{k}={v:.4g}" for k, v in sorted(reference.data.metrics.items())))
    print("generator metrics (untrained cgan_conv): " + "  ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
    print(f"classifier_train_seconds: {train_seconds:.1f}")
    print(f"classifier_test_accuracy: {loaded.test_accuracy:.4f}")
    # The key names the 10,000-sample evaluation; any other count gets its own name, never a 10k label.
    size = "10k" if args.num_samples == 10_000 else f"{args.num_samples}_samples"
    print(f"num_samples: {args.num_samples}")
    print(f"eval_{size}_cold_seconds: {timings[0]:.1f}")
    print(f"eval_{size}_cpu_seconds: {cpu[1]:.1f}")
    print(f"eval_{size}_seconds: {timings[1]:.1f}")
    print(f"bn_mode: {args.bn_mode}")
    for name, seconds in phases.items():
        print(f"phase_{name}_seconds: {seconds:.2f}")
    knn = sum(phases.get(k, 0.0) for k in ("density_coverage", "memorization", "mifid", "fid_inf"))
    print(f"new_knn_metrics_seconds: {knn:.2f}  (density/coverage, memorisation, MiFID{', FID at infinity' if args.fid_inf else ''})")
    print(f"score_generator_seconds: {phases_total:.1f}")
    scratch.cleanup()


if __name__ == "__main__":
    run_script(main, "eval_speed.py")
