"""``python -m ganbench.demo`` end to end at a test-sized budget, then its store opened as a user would."""

import csv
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

import mlflow
import mlflow.pytorch
from ganbench.demo import sample_command
from ganbench.sample import SampleSettings
from ganbench.sample import main as sample_main


@pytest.mark.slow
def test_the_demo_records_mlflow_objects_a_leaderboard_and_digits_on_demand(tmp_path, quick_classifier, quick_eval_overrides, run_cli):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tiny = ["train.max_steps=20", "data.limit=1024", "eval.num_samples=200", "eval.cas.enabled=false",
            *[o for o in quick_eval_overrides if not o.startswith(("eval.num_samples", "eval.batch_size"))],
            "eval.batch_size=100", "tracking.system_metrics=0"]
    proc = subprocess.run([sys.executable, "-m", "ganbench.demo", f"tracking.uri={uri}", f"out={tmp_path}/report", *tiny],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "leaderboard:" in proc.stdout and "mlflow ui --backend-store-uri" in proc.stdout
    assert "-m ganbench.sample run_id=best parent=" in proc.stdout

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("demo")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on the runs
    training = [r for r in client.search_runs([exp.experiment_id]) if "role" not in r.data.tags]
    assert sorted((r.data.tags["model"], r.data.tags["seed"]) for r in training) == [
        ("acgan", "0"), ("acgan", "1"), ("cgan_projection", "0"), ("cgan_projection", "1")]
    for run in training:
        (dataset,) = [d.dataset for d in run.inputs.dataset_inputs]
        assert dataset.name == "hoda-train" and dataset.digest
        assert "gen_accuracy" in run.data.metrics
    mlflow.set_tracking_uri(uri)  # a models:/ URI resolves in the current tracking store, as for any MLflow user
    model = mlflow.pytorch.load_model(training[0].data.tags["generator_model_uri"]).eval()
    with torch.no_grad():
        digits = model(torch.randn(3, 100), torch.tensor([7, 7, 7]))
    assert digits.shape == (3, 1, 28, 28)
    rows = list(csv.DictReader((tmp_path / "report" / "leaderboard.csv").open()))
    assert sorted(r["model"] for r in rows if r["model"]) == ["acgan", "cgan_projection"]

    out = tmp_path / "sevens.png"
    assert run_cli(sample_main, "run_id=best", "parent=latest", "metric=gen_accuracy", "label=7", "n=10", f"out={out}",
                   f"tracking.uri={uri}", "tracking.experiment=demo").returncode == 0
    assert out.stat().st_size > 0


@pytest.mark.slow
def test_the_demo_trains_the_fast_hoda_preset_for_3000_steps_and_nothing_else_of_its_own():
    # "The demo uses the fastest configuration": fast_hoda's model, optimiser, schedule, tricks and batch, whatever
    # they become; the grid sets only the models, the seeds, the length and the quick evaluation.
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module("ganbench.conf", version_base="1.3"):
        demo = compose("config", overrides=["sweep=demo", "model=acgan"], return_hydra_config=True)
        preset = compose("config", overrides=["experiment=fast_hoda", "model=acgan"])
    assert demo.hydra.sweeper.params == {"model": "cgan_projection,acgan", "seed": "0,1"}
    assert (demo.preset, demo.train.max_steps, demo.train.reuse_fakes) == ("fast_hoda", 3000, True)
    for node in ("model", "optim", "stabilize", "noise", "dataset", "loss"):
        assert OmegaConf.to_container(demo[node]) == OmegaConf.to_container(preset[node]), node
    own = {"max_steps", "sample_every", "checkpoint_every"}
    assert {k: v for k, v in demo.train.items() if k not in own} == {k: v for k, v in preset.train.items() if k not in own}


def test_the_demos_closing_command_draws_the_best_run_of_its_sweep():
    words = shlex.split(sample_command("0a1b", "sqlite:///my runs/mlflow.db", "demo x"))
    assert Path(words[0]).name == Path(sys.executable).name and words[1:3] == ["-m", "ganbench.sample"]  # the venv's python
    settings = SampleSettings.from_args(words[3:])
    assert (settings.run_id, settings.parent, settings.experiment) == ("best", "0a1b", "demo x")
    assert settings.tracking_uri == "sqlite:///my runs/mlflow.db"
    assert settings.metric is None  # ranked as the sweep's logged leaderboard
