"""A run's own record besides what training logs: MLflow's system metrics, sampled in a thread while it runs, and
which code ran (the commit, and any uncommitted change to it)."""

import subprocess
import time
from pathlib import Path

from ganbench.tracking import layout, make_client, mlflow_run, runs
from ganbench.tracking.runs import git_state, uncommitted_diff


def test_a_run_samples_mlflows_system_metrics_at_the_chosen_interval_and_none_when_off(mlflow_uri):
    client = make_client(mlflow_uri)
    with mlflow_run(client, "system", "sampled", {}, system_metrics_every=0.25) as sampled:
        time.sleep(2.0)
    with mlflow_run(client, "system", "off", {}, system_metrics_every=0) as off:
        time.sleep(0.5)

    metrics = client.get_run(sampled.run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(metrics)
    cpu = client.get_metric_history(sampled.run_id, "system/cpu_utilization_percentage")
    assert len(cpu) >= 3 and all(0 <= m.value <= 100 for m in cpu)  # psutil's share of all cores
    assert not [k for k in client.get_run(off.run_id).data.metrics if k.startswith("system/")]


def _repo(tmp_path: Path) -> Path:
    """A git checkout with a committed src/ and an untracked scratch file."""
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "step.py").write_text("lr = 2e-4\n")
    git("init", "-q")
    git("add", "src")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "code")
    (tmp_path / "notes.txt").write_text("not code\n")  # untracked: does not make the code dirty
    return tmp_path / "src"


def test_a_run_says_which_code_ran_its_commit_and_any_uncommitted_change(tmp_path):
    where = _repo(tmp_path)
    clean = git_state(where)
    assert len(clean[layout.GIT_COMMIT_TAG]) == 40 and clean[layout.GIT_DIRTY_TAG] == "false"
    assert uncommitted_diff(where) == ""
    (where / "step.py").write_text("lr = 8e-4\n")
    assert git_state(where) == {**clean, layout.GIT_DIRTY_TAG: "true"}
    assert "+lr = 8e-4" in uncommitted_diff(where)
    outside = tmp_path.parent / f"{tmp_path.name}-plain"
    outside.mkdir()
    assert git_state(outside) == {} and uncommitted_diff(outside) == ""


def test_a_run_from_a_dirty_checkout_logs_the_diff_beside_its_tags(mlflow_uri, monkeypatch, tmp_path):
    where = _repo(tmp_path)
    (where / "step.py").write_text("lr = 8e-4\n")
    monkeypatch.setattr(runs, "PACKAGE_DIR", where)  # the checkout ganbench "runs from"
    client = make_client(mlflow_uri)
    with mlflow_run(client, "code", "dirty", {}) as logger:
        pass
    run = client.get_run(logger.run_id)
    assert run.data.tags[layout.GIT_DIRTY_TAG] == "true"
    diff = Path(client.download_artifacts(logger.run_id, layout.UNCOMMITTED_DIFF_ARTIFACT, str(tmp_path / "dl"))).read_text()
    assert "+lr = 8e-4" in diff
