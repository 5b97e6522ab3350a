"""What a sweep costs against its number of jobs, run through Hydra's joblib launcher on this machine.

Each job is a real `python -m ganbench -m ...` job: DCGAN on `--limit` Hoda images for `--steps` generator
steps, tracked into a fresh SQLite MLflow store, evaluation off (its cost is in eval_speed.py). Sweeps of
1, 2 and 4 jobs run with `hydra.launcher.n_jobs=2`, and the 4-job sweep also with `n_jobs=1` and with Hydra's
default (basic, in-process) launcher, so the gain from two workers on two cores is a ratio from one run.

Run: .venv/bin/python benchmarks/sweep_scaling.py [--steps 200] [--limit 3200]
Figures come last as `name: value` lines.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient
from ganbench.errors import run_script


def run_sweep(workdir: Path, jobs: int, launcher: str, n_jobs: int, steps: int, limit: int) -> float:
    """Wall-clock seconds of one multirun of `jobs` seeds; checks every child run FINISHED."""
    store = workdir / "mlflow.db"
    command = [
        sys.executable, "-m", "ganbench", "-m",
        "model=dcgan", f"seed={','.join(str(s) for s in range(jobs))}",
        f"data.limit={limit}", f"train.max_steps={steps}", "train.batch_size=64", "train.checkpoint_every=0",
        "eval.enabled=false", f"tracking.uri=sqlite:///{store}", "tracking.experiment=sweep_scaling",
        f"hydra.sweep.dir={workdir / 'multirun'}", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled",
    ]
    if launcher == "joblib":
        command += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    client = MlflowClient(f"sqlite:///{store}")
    runs = client.search_runs([client.get_experiment_by_name("sweep_scaling").experiment_id])
    jobs_runs = [r for r in runs if r.data.tags.get("role") != "sweep"]
    finished = [r for r in jobs_runs if r.info.status == "FINISHED"]
    assert len(finished) == jobs, f"expected {jobs} FINISHED runs, found {[r.info.status for r in jobs_runs]}"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="generator steps per job")
    parser.add_argument("--limit", type=int, default=3200, help="Hoda training images per job")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; each job: DCGAN, {args.limit} Hoda images, {args.steps} steps at batch 64, eval off")

    cases = [("joblib", 2, 1), ("joblib", 2, 2), ("joblib", 2, 4), ("joblib", 1, 4), ("basic", 1, 4)]
    seconds: dict[tuple[str, int, int], float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for i, (launcher, n_jobs, jobs) in enumerate(cases):
            workdir = Path(scratch) / f"case{i}"
            workdir.mkdir()
            seconds[launcher, n_jobs, jobs] = run_sweep(workdir, jobs, launcher, n_jobs, args.steps, args.limit)
            print(f"{launcher:6s} n_jobs={n_jobs}  {jobs} jobs  {seconds[launcher, n_jobs, jobs]:7.1f} s", flush=True)

    print()
    for jobs in (1, 2, 4):
        print(f"sweep_{jobs}_jobs_seconds_joblib2: {seconds['joblib', 2, jobs]:.1f}")
    print(f"sweep_4_jobs_seconds_joblib1: {seconds['joblib', 1, 4]:.1f}")
    print(f"sweep_4_jobs_seconds_basic: {seconds['basic', 1, 4]:.1f}")
    print(f"seconds_per_extra_job_joblib2: {(seconds['joblib', 2, 4] - seconds['joblib', 2, 1]) / 3:.1f}")
    print(f"joblib2_vs_joblib1_speedup: {seconds['joblib', 1, 4] / seconds['joblib', 2, 4]:.3f}")
    print(f"joblib2_vs_basic_speedup: {seconds['basic', 1, 4] / seconds['joblib', 2, 4]:.3f}")


if __name__ == "__main__":
    run_script(main, "sweep_scaling.py")
