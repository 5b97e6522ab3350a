"""Runs that survive interruption and divergence, and are reproducible (real subprocesses, real MLflow stores)."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from ganbench.train.checkpoint import load_checkpoint

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The default model's nets at a quarter of their width: the same code paths in a quarter of the time.
SMALL = ["data.limit=1024", "train.batch_size=64", "train.epochs=2", "train.checkpoint_every=2", "eval.enabled=false", "seed=7",
         "model.generator.channels=[32,16]", "model.discriminator.channels=[16,32]"]


def start(tmp: Path, store: str, *extra: str) -> subprocess.Popen:
    """Train SMALL in a subprocess into the store ``{tmp}/{store}.db`` (made with the new_store fixture)."""
    args = [*SMALL, f"tracking.uri=sqlite:///{tmp}/{store}.db", f"train.checkpoint_dir={tmp}/ckpt-{store}", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "ganbench", *args, f"hydra.run.dir={tmp}/outputs"],
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_checkpoint(proc: subprocess.Popen, folder: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(folder.glob("*/step_*.pt")):
            return
        if proc.poll() is not None:
            pytest.fail(f"training ended before it could be interrupted: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    pytest.fail("no checkpoint appeared")


def only_run(tmp: Path, store: str):
    client = MlflowClient(f"sqlite:///{tmp}/{store}.db")
    runs = client.search_runs([client.get_experiment_by_name("ganbench").experiment_id])
    assert len(runs) == 1, [r.info.status for r in runs]
    return client, runs[0]


def final_weights(client: MlflowClient, run_id: str, tmp: Path, key: str = "generator") -> dict:
    path = client.download_artifacts(run_id, "checkpoints/final.pt", str(tmp))
    return load_checkpoint(path)[key]


# The second set trains the way fast_hoda does (mode seeking's paired labels and term, the D step's fakes reused for
# G's, its cosine learning rate, bf16 autocast: its train.amp=native here) plus EMA and DiffAugment: resume and
# determinism hold there too.
TECHNIQUES = {"plain": (), "fast_hoda-like": ("stabilize=[ema,diffaug,mode_seeking]", "stabilize.ema.decay=0.9",
                                              "train.reuse_fakes=true", "train.amp=true", "train.lr_schedule.name=cosine")}


@pytest.fixture(scope="module", params=list(TECHNIQUES))
def uninterrupted(request, tmp_path_factory, new_store):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    new_store(tmp / "plain.db")
    proc = start(tmp, "plain", *TECHNIQUES[request.param])
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    client, r = only_run(tmp, "plain")
    return tmp, client, r, TECHNIQUES[request.param]


def test_sigkill_then_rerun_continues_the_same_run_and_matches_an_uninterrupted_one(tmp_path, uninterrupted, new_store):
    techniques = uninterrupted[3]
    new_store(tmp_path / "killed.db")
    proc = start(tmp_path, "killed", *techniques)
    wait_for_checkpoint(proc, tmp_path / "ckpt-killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    client, r = only_run(tmp_path, "killed")
    assert r.info.status == "RUNNING"  # a SIGKILLed process cannot close its run
    killed_id = r.info.run_id

    proc = start(tmp_path, "killed", *techniques)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    client, r = only_run(tmp_path, "killed")
    assert r.info.run_id == killed_id and r.info.status == "FINISHED"
    assert int(r.data.tags["resumed_from_step"]) >= 2
    assert r.data.params["train.amp_resolved"] == ("bf16" if "train.amp=true" in techniques else "off")  # what ran
    steps = sorted(m.step for m in client.get_metric_history(r.info.run_id, "d_loss"))
    assert steps == list(range(1, 33))  # 2 epochs x 16 steps, each exactly once

    tmp_u, client_u, r_u, _ = uninterrupted
    resumed = {m.step: m.value for m in client.get_metric_history(r.info.run_id, "g_loss")}
    plain = {m.step: m.value for m in client_u.get_metric_history(r_u.info.run_id, "g_loss")}
    assert resumed == plain
    for key in ("generator", "generator_raw"):  # with EMA on, the averaged and the raw weights both match
        a, b = final_weights(client, r.info.run_id, tmp_path, key), final_weights(client_u, r_u.info.run_id, tmp_u, key)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sampler, raw = final_weights(client, r.info.run_id, tmp_path), final_weights(client, r.info.run_id, tmp_path, "generator_raw")
    assert any(not torch.equal(sampler[k], raw[k]) for k in raw) == bool(techniques)  # the EMA is its own generator
    assert not list((tmp_path / "ckpt-killed").glob("*/step_*.pt"))  # a finished run leaves no resume checkpoints


def test_sigterm_writes_a_checkpoint_and_marks_the_run_killed(tmp_path, new_store):
    new_store(tmp_path / "term.db")
    proc = start(tmp_path, "term")
    wait_for_checkpoint(proc, tmp_path / "ckpt-term")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "re-run the same command to resume" in err
    client, r = only_run(tmp_path, "term")
    assert r.info.status == "KILLED"
    assert list((tmp_path / "ckpt-term").glob("*/step_*.pt"))

    proc = start(tmp_path, "term")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    client, r2 = only_run(tmp_path, "term")
    assert r2.info.run_id == r.info.run_id and r2.info.status == "FINISHED"


def test_resume_false_starts_a_new_run(tmp_path, new_store):
    new_store(tmp_path / "fresh.db")
    proc = start(tmp_path, "fresh")
    wait_for_checkpoint(proc, tmp_path / "ckpt-fresh")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc = start(tmp_path, "fresh", "train.resume=false", "train.max_steps=2")
    assert proc.wait(timeout=600) == 0
    client = MlflowClient(f"sqlite:///{tmp_path}/fresh.db")
    runs = client.search_runs([client.get_experiment_by_name("ganbench").experiment_id])
    # The killed run's process is gone: the second command found it RUNNING and marked it KILLED.
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]
    killed = next(r for r in runs if r.info.status == "KILLED")
    assert "process" in killed.data.tags["killed"] and "is gone" in killed.data.tags["killed"]


def test_same_seed_gives_identical_logged_losses(uninterrupted, tmp_path, new_store):
    from hydra import compose, initialize_config_module

    from ganbench.app import run

    _, client_u, r_u, techniques = uninterrupted
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*SMALL, *techniques, f"tracking.uri={new_store(tmp_path / 'again.db')}",
                                           f"train.checkpoint_dir={tmp_path}/ck"])
    run(cfg)
    client, r = only_run(tmp_path, "again")
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        a = [(m.step, m.value) for m in sorted(client.get_metric_history(r.info.run_id, key), key=lambda m: m.step)]
        b = [(m.step, m.value) for m in sorted(client_u.get_metric_history(r_u.info.run_id, key), key=lambda m: m.step)]
        assert a == b, key


def test_a_nan_in_a_sweep_fails_that_job_and_the_sweep_goes_on(tmp_path, new_store):
    uri = new_store(tmp_path / "sweep.db")
    proc = subprocess.run(
        [sys.executable, "-m", "ganbench", "-m", "optim.lr=2e-4,1e30", "data.limit=256", "train.batch_size=64",
         "train.epochs=1", "eval.enabled=false", f"tracking.uri={uri}", f"train.checkpoint_dir={tmp_path}/ck",
         f"hydra.sweep.dir={tmp_path}/multirun"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("ganbench").experiment_id])
    jobs = {r.data.params["optim.lr"]: r for r in runs if "optim.lr" in r.data.params}
    assert jobs["0.0002"].info.status == "FINISHED"
    failed = jobs["1e+30"]
    assert failed.info.status == "FAILED"
    assert "non-finite loss at step 1" in failed.data.tags["diverged"]


def test_collapse_detector_stops_a_run_whose_discriminator_wins_outright(tmp_path, new_store):
    from hydra import compose, initialize_config_module

    from ganbench.app import run
    from ganbench.train.loop import DivergedError

    with initialize_config_module("ganbench.conf", version_base="1.3"):
        # G cannot learn (lr ~ 0) while D does: D separates real from fake within a few steps.
        cfg = compose("config", overrides=["data.limit=512", "train.batch_size=64", "train.epochs=20", "optim.g_lr=1e-12",
                                           "optim.d_lr=1e-2", "train.collapse_patience=3", "eval.enabled=false",
                                           f"tracking.uri={new_store(tmp_path / 'c.db')}", f"train.checkpoint_dir={tmp_path}/ck"])
    with pytest.raises(DivergedError, match="collapse at step"):
        run(cfg)
    _, r = only_run(tmp_path, "c")
    assert r.info.status == "FAILED" and "collapse at step" in r.data.tags["diverged"]


def test_deterministic_switch_sets_torch_and_cudnn_and_can_be_turned_off():
    from ganbench.device import set_determinism

    try:
        set_determinism(False, torch.device("cpu"))
        assert not torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.benchmark  # autotuning only pays (and only exists) on CUDA
        set_determinism(True, torch.device("cpu"))
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    finally:
        set_determinism(True, torch.device("cpu"))
