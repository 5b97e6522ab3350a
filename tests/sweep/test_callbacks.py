"""The sweep callback: one MLflow parent run per multirun, job outcomes, exit status, Optuna's objective.

The tests call the callback's hooks in-process, as Hydra does, on configs composed with Hydra's compose
API and a temporary SQLite store. Real multiruns through the launchers are in test_sweeps.py (there, an
invalid job beside a good one checks that the exit status reaches the shell).
"""

import copy
import json
import math

import pytest
from hydra import compose, initialize_config_module
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from mlflow.entities import Metric
from omegaconf import open_dict

from ganbench.sweep.parent import PARENT_RUN_FILE
from ganbench.sweep.callbacks import JOB_FILE, MlflowParentRun
from ganbench.tracking import child_runs
from ganbench.tracking import make_client


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store):
    """One SQLite store for the module's sweeps (a new store costs seconds of MLflow table migrations)."""
    return new_store(tmp_path_factory.mktemp("store") / "s.db")


def sweep_config(tmp_path, store, *overrides):
    """The config the callback sees at the start of ``python -m ganbench -m <overrides>``.

    Hydra composes a multirun's config without its sweep overrides and keeps them in hydra.overrides.task.
    """
    plain = [f"tracking.uri={store}", "tracking.experiment=cb", *[o for o in overrides if "," not in o]]
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*plain, f"hydra.sweep.dir={tmp_path}/multirun"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.overrides.task = [*overrides, *plain]
    return cfg


def job_end(callback, cfg, num, overrides, status=JobStatus.COMPLETED, value=None):
    """Call ``on_job_end`` as Hydra does in job ``num``'s process; returns the JobReturn it may have changed."""
    job = copy.deepcopy(cfg)
    with open_dict(job):
        job.hydra.job.num = num
        job.hydra.runtime.output_dir = str(f"{cfg.hydra.sweep.dir}/{num}")
    ret = JobReturn(overrides=overrides, status=status, _return_value=value)
    callback.on_job_end(job, ret)
    return ret


def child(client, parent, name, status, metrics=None, **tags):
    exp = client.get_run(parent).info.experiment_id
    run_id = client.create_run(exp, tags={"mlflow.parentRunId": parent, **tags}, run_name=name).info.run_id
    if metrics:
        client.log_batch(run_id, metrics=[Metric(k, v, 0, 1) for k, v in metrics.items()])
    client.set_terminated(run_id, status)
    return run_id


def test_the_callback_is_registered_in_the_primary_config(tmp_path, store):
    cfg = sweep_config(tmp_path, store)
    assert cfg.hydra.callbacks.mlflow_parent_run._target_ == "ganbench.sweep.callbacks.MlflowParentRun"


def test_a_sweep_opens_one_parent_run_and_closes_it_with_the_jobs_outcomes(tmp_path, store, capsys):
    cfg = sweep_config(tmp_path, store, "model=dcgan,wgan", "seed=0,1")
    callback = MlflowParentRun()
    callback.on_multirun_start(cfg)

    # Before any job: the store, the experiment and the parent run exist, and the jobs can find the parent.
    parent = json.loads((tmp_path / "multirun" / PARENT_RUN_FILE).read_text())["run_id"]
    client = make_client(cfg.tracking.uri)
    run = client.get_run(parent)
    assert run.info.status == "RUNNING" and client.get_experiment(run.info.experiment_id).name == "cb"
    tags = run.data.tags
    assert tags["role"] == "sweep" and tags["sweep.param.model"] == "dcgan,wgan" and tags["sweep.param.seed"] == "0,1"
    assert "model=dcgan,wgan" in tags["sweep.overrides"] and tags["sweep.sweeper"] == "BasicSweeper"

    ok = child(client, parent, "dcgan-s0", "FINISHED", {"fid_clf": 3.0})
    bad = child(client, parent, "wgan-s0", "FAILED", diverged="non-finite loss at step 1", error="DivergedError")
    job_end(callback, cfg, 0, ["model=dcgan", "seed=0"], value={"run_id": ok, "status": "FINISHED"})
    job_end(callback, cfg, 1, ["model=wgan", "seed=0"], value={"run_id": bad, "status": "FAILED", "error": "diverged"})
    job_end(callback, cfg, 2, ["model=dcgan", "seed=1"], value={"status": "INVALID", "error": "train.batch_size=0 is invalid"})
    job_end(callback, cfg, 3, ["model=wgan", "seed=1"], status=JobStatus.FAILED, value=RuntimeError("lost node"))
    record = json.loads((tmp_path / "multirun" / "1" / JOB_FILE).read_text())
    assert (record["status"], record["run_id"], record["parent_run_id"]) == ("FAILED", bad, parent)
    assert client.get_run(ok).data.tags["overrides"] == "model=dcgan seed=0"  # the report tells configurations apart by it

    with pytest.raises(SystemExit) as stop:  # an invalid config is the user's to fix: the sweep's status says so
        callback.on_multirun_end(cfg)
    assert stop.value.code == 2
    run = client.get_run(parent)
    assert run.info.status == "FINISHED"
    assert {k: run.data.metrics[k] for k in ("jobs", "jobs_invalid", "children_finished", "children_failed", "children_diverged")} == {
        "jobs": 4, "jobs_invalid": 1, "children_finished": 1, "children_failed": 1, "children_diverged": 1,
    }
    assert "train.batch_size=0 is invalid" in run.data.tags["error"]
    jobs = json.loads(open(client.download_artifacts(parent, "sweep/jobs.json", str(tmp_path))).read())
    assert [j["status"] for j in jobs] == ["FINISHED", "FAILED", "INVALID", "FAILED"] and "lost node" in jobs[3]["error"]
    err = capsys.readouterr().err
    assert "job(s) #2 did not run: train.batch_size=0 is invalid" in err and f"python -m ganbench.report parent={parent}" in err
    assert {r.info.run_id for r in child_runs(client, parent)} == {ok, bad}


def test_failed_and_diverged_jobs_are_results_the_sweep_ends_normally(tmp_path, store):
    cfg = sweep_config(tmp_path, store, "seed=0,1")
    callback = MlflowParentRun()
    callback.on_multirun_start(cfg)
    parent = callback.run_id
    client = make_client(cfg.tracking.uri)
    bad = child(client, parent, "s0", "FAILED", diverged="collapse at step 9")
    job_end(callback, cfg, 0, ["seed=0"], value={"run_id": bad, "status": "FAILED", "error": "collapse at step 9"})
    callback.on_multirun_end(cfg)  # no SystemExit
    assert client.get_run(parent).info.status == "FINISHED" and callback.run_id is None


def test_a_sweep_whose_every_job_was_refused_ends_failed(tmp_path, store, capsys):
    cfg = sweep_config(tmp_path, store, "train.batch_size=0,-1")
    callback = MlflowParentRun()
    callback.on_multirun_start(cfg)
    parent = callback.run_id
    for num, size in enumerate((0, -1)):
        job_end(callback, cfg, num, [f"train.batch_size={size}"], value={"status": "INVALID", "error": f"train.batch_size={size} is invalid"})
    with pytest.raises(SystemExit) as stop:
        callback.on_multirun_end(cfg)
    assert stop.value.code == 2
    run = make_client(cfg.tracking.uri).get_run(parent)
    assert run.info.status == "FAILED" and run.data.metrics["jobs_invalid"] == 2  # nothing trained: not an empty result
    assert "job(s) #0 did not run" in capsys.readouterr().err


def test_a_sweep_that_stops_early_leaves_its_parent_killed_not_running(tmp_path, store):
    cfg = sweep_config(tmp_path, store, "seed=0,1")
    callback = MlflowParentRun()
    callback.on_multirun_start(cfg)
    parent = callback.run_id
    callback._close_if_open()  # what the atexit hook does when on_multirun_end never came (Ctrl-C, launcher error)
    run = make_client(cfg.tracking.uri).get_run(parent)
    assert run.info.status == "KILLED" and "stopped before" in run.data.tags["killed"]


def test_an_unreachable_tracking_server_stops_the_sweep_before_any_job(tmp_path, store, capsys):
    cfg = sweep_config(tmp_path, store, "seed=0,1", "tracking.uri=http://127.0.0.1:9")
    with pytest.raises(SystemExit) as stop:
        MlflowParentRun().on_multirun_start(cfg)
    assert stop.value.code == 2
    assert "cannot reach the MLflow tracking server at http://127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "multirun" / PARENT_RUN_FILE).exists()


def test_optuna_objective_is_the_jobs_metric_and_failures_count_as_worst(tmp_path, store):
    cfg = sweep_config(tmp_path, store, "seed=0,1")
    callback = MlflowParentRun(objective="fid_clf")
    callback.on_multirun_start(cfg)
    client = make_client(cfg.tracking.uri)
    scored = child(client, callback.run_id, "a", "FINISHED", {"fid_clf": 4.5})
    unscored = child(client, callback.run_id, "b", "FINISHED", {"d_loss": 1.0})
    assert job_end(callback, cfg, 0, ["seed=0"], value={"run_id": scored, "status": "FINISHED"}).return_value == 4.5
    assert job_end(callback, cfg, 1, ["seed=1"], value={"run_id": unscored, "status": "FINISHED"}).return_value == math.inf
    assert job_end(callback, cfg, 2, ["seed=2"], value={"status": "INVALID", "error": "x"}).return_value == math.inf
    maximize = MlflowParentRun(objective="gen_accuracy", direction="maximize")
    assert maximize.objective_value(client, {"status": "FAILED", "run_id": None}) == -math.inf
    with pytest.raises(SystemExit):
        callback.on_multirun_end(cfg)


def test_a_rerun_sweep_logs_its_counts_at_its_attempt_number_never_twice_at_one_step(tmp_path, store):
    cfg = sweep_config(tmp_path, store, "seed=7,8")
    parents = set()
    for attempt in (1, 2):  # the same command twice: the second continues the first's parent run
        callback = MlflowParentRun()
        callback.on_multirun_start(cfg)
        parents.add(callback.run_id)
        callback.on_multirun_end(cfg)
    (parent,) = parents
    client = make_client(cfg.tracking.uri)
    assert client.get_run(parent).data.tags["sweep.attempt"] == "2"
    for key in ("jobs", "children_finished"):
        assert sorted(m.step for m in client.get_metric_history(parent, key)) == [1, 2], key
