"""Fault injection: real processes killed, stopped or starved of disk, on a real SQLite store.

Every case asserts what a user relies on after a re-run: nothing RUNNING, every job exactly once,
and metrics without duplicate steps.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ganbench.report import main as report_main
from ganbench.sweep.callbacks import JOB_FILE

pytestmark = pytest.mark.slow

GRID = ("model=dcgan,cgan_conv", "seed=0,1")
# Nets a quarter as wide as the models' defaults: what is tested is the sweep's bookkeeping around kills, and the
# narrow nets train each job's 48 steps in a quarter of the time.
SMALL = ("data.limit=1536", "train.batch_size=64", "train.epochs=2", "train.checkpoint_every=8", "eval.enabled=false",
         "model.generator.channels=[32,16]", "model.discriminator.channels=[16,32]")
JOBLIB = ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


def command(tmp: Path, uri: str, attempt: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "ganbench", "-m", *args, f"tracking.uri={uri}", f"train.checkpoint_dir={tmp}/ck",
            f"hydra.sweep.dir={tmp}/multirun/{attempt}"]  # a new folder each time, as the timestamped default


def start(tmp: Path, uri: str, attempt: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen(command(tmp, uri, attempt, *args), cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # its own process group: kill -9 reaches the workers


def kill_group_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 300) -> None:
    """kill -9 the whole process group (the sweep and its joblib workers) as soon as ``ready()``."""
    deadline = time.time() + timeout
    try:
        while not ready():
            assert proc.poll() is None, f"the sweep ended before the kill point: {proc.stderr.read()[-2000:]}"
            assert time.time() < deadline, "the kill point never came"
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def rerun(tmp: Path, uri: str, attempt: int, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(command(tmp, uri, attempt, *args), cwd=tmp, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def runs(uri: str) -> list:
    if not Path(uri.removeprefix("sqlite:///")).exists():
        return []
    client = MlflowClient(uri)
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def children(uri: str) -> list:
    return [r for r in runs(uri) if r.data.tags.get("role") is None]


def parents(uri: str) -> list:
    return [r for r in runs(uri) if r.data.tags.get("role") == "sweep"]


def checkpoints(tmp: Path) -> list[Path]:
    return list((tmp / "ck").glob("*/step_*.pt"))


def assert_one_complete_sweep(uri: str, jobs: int) -> None:
    """One parent FINISHED; every job once (by its choices), FINISHED; no metric step logged twice; nothing RUNNING."""
    (parent,) = parents(uri)
    assert parent.info.status == "FINISHED", parent.data.tags
    kids = children(uri)
    assert all(r.data.tags.get("mlflow.parentRunId") == parent.info.run_id for r in kids)
    choices = Counter((r.data.tags["model"], r.data.tags["seed"]) for r in kids)
    assert len(choices) == jobs and set(choices.values()) == {1}, choices
    assert [r.info.status for r in kids] == ["FINISHED"] * jobs
    assert parent.data.metrics["children_finished"] == jobs
    client = MlflowClient(uri)
    for run in kids:
        for key in ("d_loss", "g_loss"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert sorted(steps) == list(range(1, max(steps) + 1)), (run.info.run_id, key)  # none missing
    assert_nothing_logged_twice(uri)
    assert_nothing_running(uri)


def assert_nothing_logged_twice(uri: str) -> None:
    """No run, job or sweep parent, holds two values of one metric at one step."""
    client = MlflowClient(uri)
    for run in runs(uri):
        for key in run.data.metrics:
            if key.startswith("system/"):
                continue  # MLflow's own CPU/memory samples, numbered by its monitor, not by ganbench
            steps = Counter(m.step for m in client.get_metric_history(run.info.run_id, key))
            twice = {step: n for step, n in steps.items() if n > 1}
            assert not twice, (run.info.run_id, run.data.tags.get("role"), key, twice)


def assert_nothing_running(uri: str) -> None:
    running = [(r.info.run_id, r.data.tags.get("role")) for r in runs(uri) if r.info.status == "RUNNING"]
    assert not running, running


def test_a_killed_sweep_rerun_completes_as_one_sweep_with_every_job_once(tmp_path, mlflow_uri):
    """The issue's scenario: kill -9 the joblib sweep while some jobs have finished and others train, then re-run."""
    proc = start(tmp_path, mlflow_uri, 1, *GRID, *SMALL, *JOBLIB)
    kill_group_when(proc, lambda: any(r.info.status == "FINISHED" for r in children(mlflow_uri)) and bool(checkpoints(tmp_path)))
    assert any(r.info.status == "RUNNING" for r in runs(mlflow_uri))  # what kill -9 leaves behind
    finished_before = {r.info.run_id for r in children(mlflow_uri) if r.info.status == "FINISHED"}
    second = rerun(tmp_path, mlflow_uri, 2, *GRID, *SMALL, *JOBLIB)
    assert "4 jobs: 4 finished" in second.stderr
    assert_one_complete_sweep(mlflow_uri, 4)
    assert finished_before <= {r.info.run_id for r in children(mlflow_uri)}  # attached, not trained again
    assert any("resumed_from_step" in r.data.tags for r in children(mlflow_uri))  # the killed ones continued
    out = tmp_path / "report"
    assert report_main([f"tracking.uri={mlflow_uri}", "parent=latest", "metric=d_loss", f"out={out}"]) == 0
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))  # a row per configuration, its seeds counted
    assert sorted(r["model"] for r in rows) == ["cgan_conv", "dcgan"]
    assert [(r["finished"], r["killed"], r["running"]) for r in rows] == [("2", "0", "0")] * 2


def mid_job(tmp: Path, uri: str) -> bool:
    return bool(checkpoints(tmp)) and not [r for r in children(uri) if r.info.status == "FINISHED"]


def between_jobs(tmp: Path, uri: str) -> bool:
    kids = children(uri)
    return len(kids) == 1 and kids[0].info.status == "FINISHED"


def before_first_job(tmp: Path, uri: str) -> bool:
    return bool(parents(uri)) and not children(uri)


@pytest.mark.parametrize("point", [before_first_job, mid_job, between_jobs], ids=lambda f: f.__name__)
def test_kill_9_at_any_point_then_rerun_gives_every_job_once(tmp_path, mlflow_uri, point):
    args = ("seed=0,1", *SMALL, "hydra/launcher=joblib", "hydra.launcher.n_jobs=1")
    proc = start(tmp_path, mlflow_uri, 1, *args)
    kill_group_when(proc, lambda: point(tmp_path, mlflow_uri))
    rerun(tmp_path, mlflow_uri, 2, *args)
    (parent,) = parents(mlflow_uri)
    kids = children(mlflow_uri)
    assert parent.info.status == "FINISHED" and sorted(r.data.tags["seed"] for r in kids) == ["0", "1"]
    assert {r.info.status for r in kids} == {"FINISHED"}
    assert_nothing_logged_twice(mlflow_uri)
    assert_nothing_running(mlflow_uri)


def test_kill_9_during_evaluation_then_rerun_scores_every_job_once(tmp_path, mlflow_uri, quick_classifier, quick_eval_overrides):
    args = ("seed=0,1", "model=cgan_conv", "data.limit=512", "train.batch_size=64", "train.epochs=1",
            *quick_eval_overrides, "eval.num_samples=1000", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1")

    def evaluating() -> bool:  # trained (train_seconds logged), not yet scored, still RUNNING
        return any(r.info.status == "RUNNING" and "train_seconds" in r.data.metrics and "fid_clf" not in r.data.metrics
                   for r in children(mlflow_uri))

    proc = start(tmp_path, mlflow_uri, 1, *args)
    kill_group_when(proc, evaluating)
    rerun(tmp_path, mlflow_uri, 2, *args)
    kids = children(mlflow_uri)
    assert sorted(r.data.tags["seed"] for r in kids) == ["0", "1"] and {r.info.status for r in kids} == {"FINISHED"}
    client = MlflowClient(mlflow_uri)
    for run in kids:
        assert len(client.get_metric_history(run.info.run_id, "fid_clf")) == 1  # scored once
    assert_nothing_logged_twice(mlflow_uri)
    assert_nothing_running(mlflow_uri)


def test_sigterm_to_a_worker_then_rerun_gives_every_job_once(tmp_path, mlflow_uri):
    args = ("seed=0,1", *SMALL, *JOBLIB)
    proc = start(tmp_path, mlflow_uri, 1, *args)
    deadline = time.time() + 300
    while not (training := [r for r in children(mlflow_uri) if r.info.status == "RUNNING" and checkpoints(tmp_path)]):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.1)
    worker = int(training[0].data.tags["lease.pid"])  # the joblib worker training that job
    assert worker != proc.pid
    os.kill(worker, signal.SIGTERM)
    try:
        proc.wait(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    rerun(tmp_path, mlflow_uri, 2, *args)
    kids = children(mlflow_uri)
    assert sorted(r.data.tags["seed"] for r in kids) == ["0", "1"] and {r.info.status for r in kids} == {"FINISHED"}
    assert_nothing_logged_twice(mlflow_uri)
    assert_nothing_running(mlflow_uri)


def test_two_sweeps_writing_to_one_store_at_once_each_complete(tmp_path, mlflow_uri):
    tiny = ("data.limit=256", "train.batch_size=64", "train.epochs=1", "eval.enabled=false")
    first = start(tmp_path, mlflow_uri, 1, "seed=0,1", *tiny)
    second = start(tmp_path, mlflow_uri, 2, "seed=2,3", *tiny)
    for proc in (first, second):
        assert proc.wait(timeout=600) == 0, proc.stderr.read()[-3000:]
    sweeps = parents(mlflow_uri)
    assert len(sweeps) == 2 and {p.info.status for p in sweeps} == {"FINISHED"}
    by_parent = Counter(r.data.tags["mlflow.parentRunId"] for r in children(mlflow_uri))
    assert sorted(by_parent.values()) == [2, 2] and set(by_parent) == {p.info.run_id for p in sweeps}
    assert sorted(r.data.tags["seed"] for r in children(mlflow_uri)) == ["0", "1", "2", "3"]
    assert_nothing_logged_twice(mlflow_uri)
    assert_nothing_running(mlflow_uri)


# --------------------------------------------------------------------------- the same command twice at once

ONE_JOB = ("seed=0", *SMALL, "tracking.log_model=false")


def start_logged(args: list[str], tmp: Path) -> subprocess.Popen:
    """Start ``args`` with its stderr in ``tmp/first.log`` (a long run's progress could fill a pipe and stall it)."""
    with (tmp / "first.log").open("w") as log:
        return subprocess.Popen(args, cwd=tmp, stdout=subprocess.DEVNULL, stderr=log, text=True, start_new_session=True)


def wait_for_checkpoint(proc: subprocess.Popen, tmp: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not checkpoints(tmp):
        assert proc.poll() is None, f"it ended early: {(tmp / 'first.log').read_text()[-2000:]}"
        assert time.time() < deadline, "no checkpoint came"
        time.sleep(0.1)


def refusal(tmp: Path, args: list[str], first: subprocess.Popen) -> str:
    """Run ``args`` while ``first`` is mid-training; the one line it was refused with.

    ``first`` is paused (SIGSTOP) meanwhile, alive with its lease current: it cannot finish before the second
    command has looked, however slow the machine, and goes on where it was once resumed.
    """
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = subprocess.run(args, cwd=tmp, capture_output=True, text=True, timeout=600)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert second.returncode == 2, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    assert first.wait(timeout=600) == 0, (tmp / "first.log").read_text()[-3000:]
    return second.stderr.strip().splitlines()[-1]


def test_the_same_sweep_started_while_it_runs_is_refused_in_one_line_and_the_first_completes(tmp_path, mlflow_uri):
    first = start_logged(command(tmp_path, mlflow_uri, 1, *ONE_JOB), tmp_path)
    try:
        wait_for_checkpoint(first, tmp_path)
        line = refusal(tmp_path, command(tmp_path, mlflow_uri, 2, *ONE_JOB), first)
        assert line.startswith("ganbench: error: this sweep is running now (run ") and f"pid {first.pid} on " in line
        assert "last heartbeat" in line and "fresh=true" in line
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
    assert_one_complete_sweep(mlflow_uri, 1)
    assert "sweep.attempt" not in parents(mlflow_uri)[0].data.tags  # never reopened by the second command


def test_the_same_run_started_while_it_trains_is_refused_in_one_line_and_the_first_completes(tmp_path, mlflow_uri):
    def single(out: str) -> list[str]:
        return [sys.executable, "-m", "ganbench", *ONE_JOB, f"tracking.uri={mlflow_uri}", f"train.checkpoint_dir={tmp_path}/ck",
                f"hydra.run.dir={tmp_path}/{out}"]

    first = start_logged(single("a"), tmp_path)
    try:
        wait_for_checkpoint(first, tmp_path)
        line = refusal(tmp_path, single("b"), first)
        assert line.startswith("ganbench: error: this run is running now (run ") and f"pid {first.pid} on " in line
        assert "last heartbeat" in line and "fresh=true" in line
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
    (run,) = runs(mlflow_uri)
    assert run.info.status == "FINISHED" and "resumed_from_step" not in run.data.tags
    assert_nothing_logged_twice(mlflow_uri)


def test_the_leaderboard_killed_while_written_leaves_no_half_file_and_a_rerun_writes_it_whole(tmp_path, mlflow_uri):
    rerun(tmp_path, mlflow_uri, 1, "seed=0", "data.limit=256", "train.batch_size=64", "train.epochs=1", "eval.enabled=false")
    out = tmp_path / "report"
    report = [sys.executable, "-m", "ganbench.report", f"tracking.uri={mlflow_uri}", "metric=d_loss", f"out={out}", "log=false"]
    proc = subprocess.Popen(report, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    kill_group_when(proc, lambda: out.is_dir() and any(out.iterdir()))
    subprocess.run(report, cwd=tmp_path, check=True, capture_output=True, timeout=300)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["leaderboard.csv", "leaderboard.html", "leaderboard.md"], names  # leftovers of the killed writer are gone
    assert (out / "leaderboard.html").read_text().rstrip().endswith("</html>")


# --------------------------------------------------------------------------- disks that refuse writes

ONE_RUN = ("data.limit=256", "train.batch_size=64", "train.epochs=1", "eval.enabled=false")


def file_size_limit(limit_bytes: int) -> Callable[[], None]:
    """For a child process: files may not grow past ``limit_bytes`` (a write past it fails with EFBIG, as a full disk)."""
    import resource

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of the process dying
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def run_once(tmp: Path, *args: str, preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganbench", *ONE_RUN, *args, f"hydra.run.dir={tmp}/out"], cwd=tmp,
                          capture_output=True, text=True, timeout=600, preexec_fn=preexec)


def test_a_disk_that_fills_up_mid_checkpoint_is_one_line_exit_2_and_leaves_no_partial_file(tmp_path, mlflow_uri):
    # 4 MB: the store and the sample grids fit; a resume checkpoint (nets and Adam states) does not.
    proc = run_once(tmp_path, f"tracking.uri={mlflow_uri}", f"train.checkpoint_dir={tmp_path}/ck", "train.checkpoint_every=2",
                    preexec=file_size_limit(4 << 20))
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("ganbench: error: could not write step_000000002.pt to ") and str(tmp_path / "ck") in line
    assert "File too large" in line and "train.checkpoint_dir" in line and "Traceback" not in proc.stderr
    assert not [p for p in (tmp_path / "ck").rglob("*") if p.is_file()]  # no half-written checkpoint or temp file
    (run,) = runs(mlflow_uri)
    assert run.info.status == "FAILED" and "could not write" in run.data.tags["error"]
    again = run_once(tmp_path, f"tracking.uri={mlflow_uri}", f"train.checkpoint_dir={tmp_path}/ck", "train.checkpoint_every=2")
    assert again.returncode == 0, again.stderr[-2000:]  # with room, the same command trains
    assert sorted(r.info.status for r in runs(mlflow_uri)) == ["FAILED", "FINISHED"]


@contextlib.contextmanager
def read_only_mount(mount: Path, fill: Callable[[Path], None] = lambda _: None):
    """A small tmpfs at ``mount``, filled by ``fill``, then remounted read-only (root writes through file
    permissions, not through a read-only mount)."""
    mount.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        fill(mount)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def read_only_store(tmp_path, migrated_store):
    """A store on a read-only tmpfs."""
    with read_only_mount(tmp_path / "ro", lambda mount: (mount / "mlflow.db").write_bytes(migrated_store.read_bytes())) as mount:
        yield f"sqlite:///{mount / 'mlflow.db'}"


def test_a_read_only_store_is_one_line_exit_2_and_nothing_runs(tmp_path, read_only_store):
    proc = run_once(tmp_path, f"tracking.uri={read_only_store}", f"train.checkpoint_dir={tmp_path}/ck")
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("ganbench: error: the MLflow store") and read_only_store in line and "cannot be written" in line
    assert "Read-only file system" in line and "tracking.uri" in line
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").rglob("*.pt"))


def test_a_report_folder_that_refuses_writes_is_one_line_exit_2(tmp_path, mlflow_uri, read_only_store, run_cli):
    assert run_once(tmp_path, f"tracking.uri={mlflow_uri}", f"train.checkpoint_dir={tmp_path}/ck").returncode == 0
    out = Path(read_only_store.removeprefix("sqlite:///")).parent / "report"
    proc = run_cli(report_main, f"tracking.uri={mlflow_uri}", "parent=none", "metric=d_loss", f"out={out}")
    assert proc.returncode == 2
    (line,) = [line for line in proc.stderr.splitlines() if "error" in line]
    assert line.startswith("ganbench.report: error: could not write") and "Read-only file system" in line


def job_records(sweep_dir: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in sweep_dir.rglob(JOB_FILE)), key=lambda j: j["num"])


def test_a_sweep_whose_store_fills_up_is_one_line_exit_2_and_a_rerun_with_room_completes(tmp_path, mlflow_uri):
    """``prlimit --fsize=<store size>``: the store cannot grow, as on a full disk (SQLite reports "disk I/O error")."""
    store_size = Path(mlflow_uri.removeprefix("sqlite:///")).stat().st_size
    args = command(tmp_path, mlflow_uri, 1, "seed=0,1", *ONE_RUN, "tracking.system_metrics=0")
    full = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600, preexec_fn=file_size_limit(store_size))
    assert full.returncode == 2, full.stderr[-3000:]
    line = full.stderr.strip().splitlines()[-1]  # where the store fills varies: a job's write, or the parent's summary
    assert line.startswith("ganbench: error: ") and f"to the MLflow store {mlflow_uri}" in line
    assert "disk I/O error" in line and "tracking.uri" in line
    assert "Traceback" not in full.stderr and "UserWarning" not in full.stderr  # not Hydra's warning of a callback's error
    assert "stopped before all its jobs returned" not in str([r.data.tags for r in parents(mlflow_uri)])  # no wrong reason
    rerun(tmp_path, mlflow_uri, 2, "seed=0,1", *ONE_RUN, "tracking.system_metrics=0")
    (parent,) = parents(mlflow_uri)
    assert parent.info.status == "FINISHED" and sorted(r.data.tags["seed"] for r in children(mlflow_uri)) == ["0", "1"]
    assert {r.info.status for r in children(mlflow_uri)} == {"FINISHED"}
    assert_nothing_logged_twice(mlflow_uri)
    assert_nothing_running(mlflow_uri)


def test_a_run_whose_store_fills_up_is_one_line_exit_2_and_leaves_nothing_running(tmp_path, mlflow_uri):
    store_size = Path(mlflow_uri.removeprefix("sqlite:///")).stat().st_size
    proc = run_once(tmp_path, f"tracking.uri={mlflow_uri}", f"train.checkpoint_dir={tmp_path}/ck", preexec=file_size_limit(store_size))
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("ganbench: error: could not write ") and f"to the MLflow store {mlflow_uri}" in line
    assert "Traceback" not in proc.stderr
    again = run_once(tmp_path, f"tracking.uri={mlflow_uri}", f"train.checkpoint_dir={tmp_path}/ck")
    assert again.returncode == 0, again.stderr[-2000:]
    assert_nothing_running(mlflow_uri)


def test_a_sweep_whose_artifact_store_refuses_writes_is_one_line_exit_2_and_its_job_failed_not_invalid(tmp_path, mlflow_uri):
    # A read-only tmpfs where the store keeps its artifacts (tests run as root: chmod would not stop a write).
    with read_only_mount(tmp_path / "mlartifacts"):
        proc = subprocess.run(command(tmp_path, mlflow_uri, 1, "seed=0", *ONE_RUN), cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("ganbench: error: could not write the sweep's job list sweep/jobs.json to file://")
    assert "(Read-only file system)" in line and "Traceback" not in proc.stderr and "UserWarning" not in proc.stderr
    (parent,) = parents(mlflow_uri)
    assert parent.info.status == "FAILED" and "Read-only file system" in parent.data.tags["error"]
    (kid,) = children(mlflow_uri)
    (job,) = job_records(tmp_path / "multirun" / "1")
    assert kid.info.status == "FAILED" and (job["status"], job["run_id"]) == ("FAILED", kid.info.run_id)
    assert_nothing_running(mlflow_uri)


def test_a_job_that_cannot_write_is_failed_with_its_run_not_an_invalid_config(tmp_path, mlflow_uri):
    # 4 MB: the store and the sample grids fit; a resume checkpoint does not (a WriteError inside the job's run).
    proc = subprocess.run(command(tmp_path, mlflow_uri, 1, "seed=0", *ONE_RUN, "train.checkpoint_every=2"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, preexec_fn=file_size_limit(4 << 20))
    assert proc.returncode == 2, proc.stderr[-3000:]  # FAILED, yet no result: the disk is the user's to fix
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("ganbench: error: job(s) #0 failed: could not write step_000000002.pt to ") and "Traceback" not in proc.stderr
    (kid,) = children(mlflow_uri)
    (job,) = job_records(tmp_path / "multirun" / "1")
    assert kid.info.status == "FAILED" and (job["status"], job["run_id"]) == ("FAILED", kid.info.run_id)
    assert "could not write step_000000002.pt" in job["error"]
    (parent,) = parents(mlflow_uri)
    assert (parent.data.metrics["jobs"], parent.data.metrics["jobs_invalid"], parent.data.metrics["children_failed"]) == (1, 0, 1)
    assert "1 jobs: 0 finished, 1 failed (0 diverged), 0 killed, 0 invalid" in proc.stderr
