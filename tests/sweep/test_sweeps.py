"""Sweeps that scale out: the ready grids, the joblib and submitit launchers, a real MLflow server, and
parallel processes sharing one new SQLite store. Real subprocesses, real stores, a few hundred Hoda images."""

import contextlib
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import OmegaConf

from ganbench import report, validate
from ganbench.sweep.grids import sweep_names
from ganbench.sweep.parent import PARENT_RUN_FILE
from ganbench.sweep.callbacks import JOB_FILE
from ganbench.tracking import child_runs
from ganbench.tracking import experiment_id, make_client

SWEEP_DIR = Path(__file__).resolve().parents[2] / "sweeps"  # the top-level folder of ready grids
SWEEPS = sweep_names()
assert SWEEPS and SWEEPS == sorted(p.stem for p in SWEEP_DIR.glob("*.yaml")), "the installed grids are the checkout's"
# A 2 x 2 grid, two seeds: 200 images, 2 generator steps a run.
TINY = ["data.limit=200", "train.batch_size=50", "train.max_steps=2", "train.epochs=1", "eval.enabled=false"]
GRID = ["model=dcgan,cgan_conv", "stabilize=none,smooth", "seed=0,1"]


def has_optuna() -> bool:
    try:
        import hydra_plugins.hydra_optuna_sweeper  # noqa: F401
    except ImportError:
        return False
    return True


def sweep(tmp_path: Path, uri: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "ganbench", "-m", *args, f"tracking.uri={uri}", f"train.checkpoint_dir={tmp_path}/ck",
         f"hydra.sweep.dir={tmp_path}/multirun"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    assert proc.returncode == expect, proc.stderr[-3000:]
    return proc


def parent_and_children(tmp_path: Path, uri: str):
    parent = json.loads((tmp_path / "multirun" / PARENT_RUN_FILE).read_text())["run_id"]
    client = make_client(uri)
    return client, client.get_run(parent), child_runs(client, parent)


# --------------------------------------------------------------------------- the ready grids


@pytest.mark.parametrize("name", SWEEPS)
def test_every_sweep_file_starts_with_one_command_and_composes_valid_jobs(name):
    if name == "optuna" and not has_optuna():
        pytest.skip("hydra-optuna-sweeper is not installed (pip install -e '.[optuna]')")
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"sweep={name}"], return_hydra_config=True)
        params = OmegaConf.to_container(cfg.hydra.sweeper.params)
        if name == "optuna":
            assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.sweeper.direction == "minimize"
            assert cfg.hydra.callbacks.mlflow_parent_run.objective == "fid_clf"
            return
        assert len(str(params["seed"]).split(",")) >= 2, "every grid repeats each configuration over seeds"
        # Each configuration of the grid (seed 0) must be a valid job: an invalid one would fail the sweep.
        parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items() if k != "seed"])
        jobs = BasicSweeper.split_arguments(parsed, None)[0]
        for job in jobs:
            validate.check(compose("config", overrides=[f"sweep={name}", *job, "seed=0"]))
    expected = {"smoke": 4, "demo": 2, "seeds": 9, "stabilization": 21, "losses": 15, "noise_prior": 2,
                "hoda_benchmark": 14, "reproduce": 9, "reproduce_full": 9}
    assert len(jobs) == expected[name]


# --------------------------------------------------------------------------- launchers and stores


def test_two_by_two_sweep_with_two_seeds_on_joblib_then_the_leaderboard(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep(tmp_path, uri, *GRID, *TINY, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    client, parent, children = parent_and_children(tmp_path, uri)
    assert parent.info.status == "FINISHED" and parent.data.tags["role"] == "sweep"
    assert parent.data.tags["sweep.launcher"] == "JoblibLauncher" and parent.data.metrics["children_finished"] == 8
    assert sorted(r.info.status for r in children) == ["FINISHED"] * 8
    assert {(r.data.tags["model"], r.data.tags["stabilize"], r.data.tags["seed"]) for r in children} == {
        (m, s, seed) for m in ("dcgan", "cgan_conv") for s in ("none", "smooth") for seed in ("0", "1")
    }
    sweeps = client.search_runs([parent.info.experiment_id], "tags.role = 'sweep'")
    assert len(sweeps) == 1

    # Evaluation is off in this sweep: rank by the generator's last loss to exercise ranks and intervals.
    out = tmp_path / "report"
    assert report.main([f"tracking.uri={uri}", "metric=g_loss", "direction=min", f"out={out}"], echo=lambda s: None) == 0
    rows = list(csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text())))
    assert sorted(r["rank"] for r in rows) == ["1", "2", "3", "4"]
    assert all(r["g_loss_n"] == "2" and r["seeds"] == "0;1" and r["g_loss_ci95_low"] and r["g_loss_ci95_high"] for r in rows)
    assert all(r["p_vs_best"] for r in rows if r["rank"] != "1")
    page = (out / "leaderboard.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) >= 4 + 2  # four sample grids, ranked metric, loss curves
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} >= {"report/leaderboard.html"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path, new_store):
    """A real ``mlflow server`` on 127.0.0.1 with a SQLite backend and served artifacts; stopped afterwards."""
    port = free_port()
    server_dir = tmp_path / "server"
    new_store(server_dir / "server.db")  # already migrated: the server starts seconds sooner
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{server_dir}/server.db", "--artifacts-destination", str(server_dir / "artifacts")],
        cwd=server_dir, stdout=subprocess.DEVNULL, stderr=open(server_dir / "server.log", "w"),
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"mlflow server did not start: {(server_dir / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield uri
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_a_sweep_against_a_real_mlflow_server(tmp_path, mlflow_server):
    # Two models x two seeds (the grid above without its stabilize axis): four jobs through the server's REST API.
    sweep(tmp_path, mlflow_server, "model=dcgan,cgan_conv", "seed=0,1", *TINY, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    client, parent, children = parent_and_children(tmp_path, mlflow_server)
    assert parent.info.status == "FINISHED" and sorted(r.info.status for r in children) == ["FINISHED"] * 4
    assert client.list_artifacts(children[0].info.run_id, "samples")  # artifacts went through the server
    out = tmp_path / "report"
    assert report.main([f"tracking.uri={mlflow_server}", f"parent={parent.info.run_id}", "metric=g_loss", "direction=min",
                        f"out={out}"], echo=lambda s: None) == 0
    assert (out / "leaderboard.csv").read_text().count("\n") == 1 + 2


def test_submitit_local_runs_a_job_and_an_invalid_one_fails_the_sweeps_exit_status(tmp_path, mlflow_uri):
    uri = mlflow_uri
    proc = sweep(tmp_path, uri, "seed=0", "train.d_steps=1,0", *TINY, "hydra/launcher=submitit_local",
                 "hydra.launcher.timeout_min=10", expect=2)
    assert "ganbench: error: job(s) #1 did not run: train.d_steps=0 is invalid" in proc.stderr
    _, parent, children = parent_and_children(tmp_path, uri)
    assert parent.data.tags["sweep.launcher"] == "LocalLauncher" and parent.info.status == "FINISHED"
    assert [r.info.status for r in children] == ["FINISHED"]  # the valid job ran in its own process
    assert (parent.data.metrics["jobs"], parent.data.metrics["jobs_invalid"]) == (2, 1)
    records = sorted((json.loads(p.read_text()) for p in (tmp_path / "multirun").rglob(JOB_FILE)), key=lambda r: r["num"])
    assert [(r["status"], r["run_id"]) for r in records] == [("FINISHED", children[0].info.run_id), ("INVALID", None)]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_to_a_joblib_sweep_closes_its_parent_run_killed(tmp_path, mlflow_uri):
    uri = mlflow_uri
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganbench", "-m", "seed=0,1", "data.limit=640", "train.batch_size=64", "train.epochs=1000",
         "eval.enabled=false", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"tracking.uri={uri}",
         f"train.checkpoint_dir={tmp_path}/ck", f"hydra.sweep.dir={tmp_path}/multirun"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, so the finally below also reaps the joblib workers
    )
    try:
        deadline = time.time() + 300
        while not (tmp_path / "multirun" / PARENT_RUN_FILE).is_file() or not list((tmp_path / "ck").glob("*/step_*.pt")):
            assert proc.poll() is None and time.time() < deadline, "the sweep never started training"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        deadline = time.time() + 60
        while group_alive(proc.pid):  # the joblib workers stop too; none trains on unwatched
            assert time.time() < deadline, "joblib workers outlived the sweep"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    _, parent, _ = parent_and_children(tmp_path, uri)
    assert parent.info.status == "KILLED" and "stopped before" in parent.data.tags["killed"]


def open_store_and_log_a_run(uri, barrier):
    """One of the racing processes: all open the new store at the same moment, then log a run."""
    barrier.wait(timeout=60)
    client = make_client(uri)
    run = client.create_run(experiment_id(client, "race"))
    client.log_metric(run.info.run_id, "x", 1.0)
    client.set_terminated(run.info.run_id)


def test_parallel_processes_create_one_new_sqlite_store_without_errors(tmp_path, run_together):
    """Four processes open a store that does not exist yet at the same moment.

    Without the lock beside the file, MLflow's table creation races ("duplicate column name") and
    three of the four fail; with it each finds the tables the first one made.
    """
    uri = f"sqlite:///{tmp_path}/race/mlflow.db"
    run_together(open_store_and_log_a_run, [(uri,)] * 4)
    client = make_client(uri)
    exp = client.get_experiment_by_name("race")
    assert len(client.search_runs([exp.experiment_id])) == 4
    assert [e.name for e in client.search_experiments()].count("race") == 1
